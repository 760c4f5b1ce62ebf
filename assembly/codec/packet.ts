// Control packet types (the high nibble of the first byte) and the fixed-header
// flags each one must carry [MQTT-2.2.2-1], [MQTT-2.2.2-2].

export const enum PacketType {
  Reserved = 0, CONNECT = 1, CONNACK = 2, PUBLISH = 3, PUBACK = 4, PUBREC = 5, PUBREL = 6,
  PUBCOMP = 7, SUBSCRIBE = 8, SUBACK = 9, UNSUBSCRIBE = 10, UNSUBACK = 11, PINGREQ = 12,
  PINGRESP = 13, DISCONNECT = 14, AUTH = 15,
}

/** The only legal flag nibble for each type; PUBLISH (-1) carries DUP, QoS and RETAIN. */
export function requiredFlags(type: i32): i32 {
  if (type == PacketType.PUBLISH) return -1;
  if (type == PacketType.PUBREL || type == PacketType.SUBSCRIBE || type == PacketType.UNSUBSCRIBE) return 2;
  return 0;
}
