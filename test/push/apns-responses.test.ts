import assert from 'node:assert/strict';
import { test } from 'node:test';
import { classifyAnswer } from '../../src/push/apns/responses.ts';

const SENT_ID = '0b5ad7c2-55a4-4a3e-9d5e-5b2c1f0e9a11';
const answer = (status: number, reason?: string, timestamp?: number) => ({
  status,
  body: reason === undefined ? '' : JSON.stringify(timestamp === undefined ? { reason } : { reason, timestamp }),
});

// Apple's table of reasons ("Handling notification responses from APNs") and what each means for us.
const TABLE: Array<[number, string, 'invalid-token' | 'permanent' | 'retry' | 'misconfigured']> = [
  [400, 'BadCollapseId', 'permanent'],
  [400, 'BadDeviceToken', 'invalid-token'],
  [400, 'BadExpirationDate', 'permanent'],
  [400, 'BadMessageId', 'permanent'],
  [400, 'BadPriority', 'permanent'],
  [400, 'BadTopic', 'permanent'],
  [400, 'DeviceTokenNotForTopic', 'permanent'],
  [400, 'DuplicateHeaders', 'permanent'],
  [400, 'IdleTimeout', 'retry'],
  [400, 'InvalidPushType', 'permanent'],
  [400, 'MissingDeviceToken', 'permanent'],
  [400, 'MissingTopic', 'permanent'],
  [400, 'PayloadEmpty', 'permanent'],
  [400, 'TopicDisallowed', 'permanent'],
  [400, 'MissingProviderToken', 'misconfigured'],
  [403, 'BadCertificate', 'permanent'],
  [403, 'BadCertificateEnvironment', 'permanent'],
  [403, 'ExpiredProviderToken', 'misconfigured'],
  [403, 'Forbidden', 'permanent'],
  [403, 'InvalidProviderToken', 'misconfigured'],
  [403, 'MissingProviderToken', 'misconfigured'],
  [403, 'UnrelatedKeyIdInToken', 'misconfigured'],
  [403, 'BadEnvironmentKeyIdInToken', 'misconfigured'],
  [404, 'BadPath', 'permanent'],
  [405, 'MethodNotAllowed', 'permanent'],
  [410, 'ExpiredToken', 'invalid-token'],
  [410, 'Unregistered', 'invalid-token'],
  [413, 'PayloadTooLarge', 'permanent'],
  [429, 'TooManyProviderTokenUpdates', 'retry'],
  [429, 'TooManyRequests', 'retry'],
  [500, 'InternalServerError', 'retry'],
  [503, 'ServiceUnavailable', 'retry'],
  [503, 'Shutdown', 'retry'],
];

test("every reason in Apple's table is classified as documented", () => {
  for (const [status, reason, kind] of TABLE) {
    assert.deepEqual(classifyAnswer(answer(status, reason), SENT_ID), { kind, status, reason }, `${status} ${reason}`);
  }
});

test('200 is accepted under the apns-id APNs echoes, or the one sent when it echoes none', () => {
  assert.deepEqual(classifyAnswer({ status: 200, apnsId: 'ECHOED', body: '' }, SENT_ID), { kind: 'accepted', apnsId: 'ECHOED' });
  assert.deepEqual(classifyAnswer({ status: 200, body: '' }, SENT_ID), { kind: 'accepted', apnsId: SENT_ID });
});

test("Unregistered carries Apple's timestamp", () => {
  assert.deepEqual(classifyAnswer(answer(410, 'Unregistered', 1_767_225_600_000), SENT_ID), {
    kind: 'invalid-token',
    status: 410,
    reason: 'Unregistered',
    timestamp: 1_767_225_600_000,
  });
});

test('unknown reasons fall back on the status: 4xx will not pass, 5xx may later', () => {
  assert.equal(classifyAnswer(answer(400, 'SomethingNew'), SENT_ID).kind, 'permanent');
  assert.equal(classifyAnswer(answer(403, 'SomethingNew'), SENT_ID).kind, 'permanent');
  assert.equal(classifyAnswer(answer(502, 'SomethingNew'), SENT_ID).kind, 'retry');
  assert.equal(classifyAnswer(answer(410, 'SomethingNew'), SENT_ID).kind, 'invalid-token');
});

test('a body that is not Apple JSON still yields a reason naming the status', () => {
  assert.deepEqual(classifyAnswer({ status: 502, body: '<html>Bad gateway</html>' }, SENT_ID), {
    kind: 'retry',
    status: 502,
    reason: 'HTTP 502',
  });
  assert.deepEqual(classifyAnswer({ status: 400, body: '' }, SENT_ID), { kind: 'permanent', status: 400, reason: 'HTTP 400' });
});
