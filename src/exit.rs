//! Exit codes (sysexits where one fits; 255 for 1.2-mode set-up failures, as 1.2's
//! init scripts expect a non-zero status there).

pub const OK: i32 = 0;
pub const FAILURE: i32 = 1;
pub const USAGE: i32 = 64;
pub const UNAVAILABLE: i32 = 69;
pub const SOFTWARE: i32 = 70;
pub const CANTCREAT: i32 = 73;
pub const CONFIG: i32 = 78;
pub const LEGACY_FAILURE: i32 = 255;
