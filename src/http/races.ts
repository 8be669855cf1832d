import type { FastifyRequest } from 'fastify';
import { isForeignKeyViolation, isTransientConflict } from '../db/errors.ts';
import type { DeviceService } from '../modules/devices/service.ts';
import type { Problem } from './error-handler.ts';

/**
 * A request that loses a race with a deletion (the caller's own DELETE
 * /v1/me or sign-out, a partner deleting their account) fails inside the
 * database on a foreign key: the row it refers to was there when it was
 * checked and is gone when it writes. That is not a server error. If the
 * caller's own device is gone, the answer is the one the next request would
 * get, 401 INVALID_TOKEN; otherwise something else the request named went
 * away, and a retry gets the definitive answer (503 with Retry-After), as
 * for a PostgreSQL deadlock or serialization failure.
 * Both statuses are documented on every authenticated route.
 */
export function explainRaces(devices: DeviceService) {
  return async (error: unknown, request: FastifyRequest): Promise<Problem | undefined> => {
    if (isTransientConflict(error)) return retry;
    if (!isForeignKeyViolation(error)) return undefined;
    const principal = request.principal;
    if (principal && !(await devices.exists(principal.userId, principal.deviceId))) {
      return { code: 'INVALID_TOKEN', detail: 'This device or its account no longer exists' };
    }
    return retry;
  };
}

const retry: Problem = {
  code: 'SERVICE_UNAVAILABLE',
  detail: 'The request collided with a concurrent change to what it refers to; retry it',
  headers: { 'retry-after': '1' },
};
