// AUTH (MQTT 5 §3.15): a reason code and properties (Authentication Method and Data).
// Midge implements no enhanced authentication method yet; the decoder exists so an
// AUTH packet is validated like any other and a host-provided method can be added.

import { readerStart, readU8, readError, pos, end, DecodeError } from "./reader";
import { decodeProperties, hasProp, Prop } from "./properties";
import { PacketType } from "./packet";

let authReason: i32 = 0;
export let authHasMethod: bool = false;

export function decodeAuth(ptr: usize, limit: usize): i32 {
  readerStart(ptr, limit);
  authReason = 0; authHasMethod = false;
  if (pos < end) authReason = readU8();
  if (pos < end) {
    if (!decodeProperties(PacketType.AUTH)) return readError;
    authHasMethod = hasProp(Prop.AuthMethod);
  }
  if (pos != end) return DecodeError.Malformed;
  // reason codes: 0x00 success, 0x18 continue, 0x19 re-authenticate
  if (authReason != 0x00 && authReason != 0x18 && authReason != 0x19) return DecodeError.Protocol;
  return 0;
}
