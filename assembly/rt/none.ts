// The allocation gate: a runtime with no allocator. Any code path of the core that
// would allocate (`new`, building a string, an Array, a closure) calls one of these
// and therefore fails to COMPILE. Release builds use it (`--runtime ./assembly/rt/none`);
// unit tests use the `stub` runtime and prove at run time that the heap never moves.

// @ts-ignore: decorator
@unsafe @global function __alloc(size: usize): usize { ERROR("core must not allocate"); return 0; }
// @ts-ignore: decorator
@unsafe @global function __realloc(ptr: usize, size: usize): usize { ERROR("core must not allocate"); return 0; }
// @ts-ignore: decorator
@unsafe @global function __free(ptr: usize): void { ERROR("core must not allocate"); }
// @ts-ignore: decorator
@unsafe @global function __reset(): void { ERROR("core must not allocate"); }
// @ts-ignore: decorator
@unsafe @global function __new(size: usize, id: u32): usize { ERROR("core must not allocate"); return 0; }
// @ts-ignore: decorator
@unsafe @global function __renew(oldPtr: usize, size: usize): usize { ERROR("core must not allocate"); return 0; }
// @ts-ignore: decorator
@global @unsafe function __link(parentPtr: usize, childPtr: usize, expectMultiple: bool): void { }
// @ts-ignore: decorator
@global @unsafe function __pin(ptr: usize): usize { return ptr; }
// @ts-ignore: decorator
@global @unsafe function __unpin(ptr: usize): void { }
// @ts-ignore: decorator
@global @unsafe function __visit(ptr: usize, cookie: u32): void { }
// @ts-ignore: decorator
@global @unsafe function __collect(): void { }
