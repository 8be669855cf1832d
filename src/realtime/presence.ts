/**
 * Who is connected right now. A user is online while any of their devices
 * holds a live socket. Answered from this instance's connection registry; a
 * shared registry takes its place when several instances run.
 */
export interface Presence {
  isUserOnline(userId: string): boolean;
  isDeviceOnline(deviceId: string): boolean;
  /** The devices of a user that hold a live socket. */
  onlineDevices(userId: string): string[];
}
