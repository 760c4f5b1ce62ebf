// CRC-32 (IEEE 802.3: reflected, polynomial 0xEDB88320, as zlib and PNG), four bits at a
// time: a 64-byte table instead of 1 KiB, fast enough for records on their way to a disk.

const TABLE = memory.data<u32>([
  0x00000000, 0x1DB71064, 0x3B6E20C8, 0x26D930AC, 0x76DC4190, 0x6B6B51F4, 0x4DB26158, 0x5005713C,
  0xEDB88320, 0xF00F9344, 0xD6D6A3E8, 0xCB61B38C, 0x9B64C2B0, 0x86D3D2D4, 0xA00AE278, 0xBDBDF21C,
]);

/** The CRC before any byte. */
// @ts-ignore: decorator
@inline export const CRC_START: u32 = 0xFFFFFFFF;

/** Continue `crc` over `len` bytes at `p`. */
export function crcUpdate(crc: u32, p: usize, len: i32): u32 {
  for (let i = 0; i < len; i++) {
    crc ^= <u32>load<u8>(p + <usize>i);
    crc = (crc >> 4) ^ load<u32>(TABLE + (<usize>(crc & 15) << 2));
    crc = (crc >> 4) ^ load<u32>(TABLE + (<usize>(crc & 15) << 2));
  }
  return crc;
}

/** The CRC-32 of what `crc` went over. */
// @ts-ignore: decorator
@inline export function crcEnd(crc: u32): u32 { return ~crc; }
