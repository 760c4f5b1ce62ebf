// A fixed pool of equal rows inside a region of linear memory that was reserved at
// compile time. Free rows form a list threaded through each row's first 4 bytes;
// rows never used are handed out by a high-water mark, so a large idle table is
// never touched (and never becomes resident memory).
//
//   Pool descriptor            rows at `base`, `stride` bytes each
//   ┌──────┬──────┬──────┐     ┌────────────┬────────────┬─────┬──────────┐
//   │ free │ high │ used │ ... │ row 0      │ row 1      │ ... │ row max-1│
//   └──────┴──────┴──────┘     └────────────┴────────────┴─────┴──────────┘
//                               first i32 of a free row = index of next free row

// @ts-ignore: decorator
@unmanaged @final export class Pool {
  free: i32;    // head of the free list, -1 when empty
  high: i32;    // rows [0, high) have been handed out at least once
  used: i32;    // rows in use now
  max: i32;     // capacity
  base: usize;  // address of row 0
  stride: usize;
}

/** A static pool descriptor (call once per table, at module level). */
// @ts-ignore: decorator
@inline export function poolDescriptor(): Pool {
  return changetype<Pool>(memory.data(offsetof<Pool>(), 8));
}

export function poolInit(p: Pool, base: usize, stride: usize, max: i32): void {
  p.free = -1; p.high = 0; p.used = 0; p.max = max; p.base = base; p.stride = stride;
}

/** A free row index, or -1 when the pool is full. The row's contents are stale. */
export function poolAlloc(p: Pool): i32 {
  let i = p.free;
  if (i >= 0) {
    p.free = load<i32>(p.base + <usize>i * p.stride);
  } else if (p.high < p.max) {
    i = p.high++;
  } else {
    return -1;
  }
  p.used++;
  return i;
}

export function poolFree(p: Pool, i: i32): void {
  store<i32>(p.base + <usize>i * p.stride, p.free);
  p.free = i;
  p.used--;
}
