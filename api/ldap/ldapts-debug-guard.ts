/**
 * ldapts 9 builds `Sending message: ${JSON.stringify(message)}` for every request it sends, whether or not its
 * debug log (`NODE_DEBUG=ldapts`) is on: a search request's filter tree and attribute list serialised per
 * operation, about 3 % of the API's CPU in a profile of uncached decisions. Until ldapts checks
 * `logDebug.enabled` first, messages get a `toJSON` naming only their type and ID when that log is off, so the
 * string it throws away is cheap. With the log on, nothing changes. (A bind's message is copied before it is
 * serialised, to redact the password, so it stays as ldapts writes it; it has no filter tree.)
 */
import { debuglog } from "node:util";
import { SearchRequest } from "ldapts";

/** Installs the guard on ldapts' message base class unless its debug log is on; true when installed. */
export function guardLdaptsDebugStrings(debugEnabled = debuglog("ldapts").enabled): boolean {
  if (debugEnabled) return false;
  const message = Object.getPrototypeOf(SearchRequest.prototype) as object;
  if (Object.hasOwn(message, "toJSON")) return true;
  Object.defineProperty(message, "toJSON", {
    configurable: true,
    value: function messageSummary(this: { messageId: number }) {
      return { messageId: this.messageId, type: this.constructor.name };
    },
  });
  return true;
}
