//! Run-time choice of the widest vector instructions for the dense loops.

/// Calls `body(args)`, a function that is `#[inline(always)]`, compiled for AVX-512 or AVX2
/// when the processor has them (chosen at run time), else for the baseline processor: the
/// loops the compiler vectorises then take eight or four doubles per instruction instead of
/// two. IEEE arithmetic makes every build give identical bits. This is the one place in the
/// workspace that uses `unsafe`; the emulator's layer loops and the dense layer functions
/// here go through it.
#[macro_export]
macro_rules! widest_simd {
    ($body:ident($($arg:ident: $ty:ty),* $(,)?)) => {{
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx512f")]
            #[inline(never)]
            #[allow(unsafe_code)]
            unsafe fn avx512($($arg: $ty),*) {
                $body($($arg),*)
            }
            #[target_feature(enable = "avx2")]
            #[inline(never)]
            #[allow(unsafe_code)]
            unsafe fn avx2($($arg: $ty),*) {
                $body($($arg),*)
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the processor supports AVX-512F (checked just above), which is all a
                // function compiled with `target_feature(enable = "avx512f")` requires of its
                // caller.
                #[allow(unsafe_code)]
                unsafe {
                    avx512($($arg),*)
                }
                return;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: as above, for AVX2.
                #[allow(unsafe_code)]
                unsafe {
                    avx2($($arg),*)
                }
                return;
            }
        }
        $body($($arg),*)
    }};
}

/// The vector instructions [`widest_simd!`] chooses on this processor, by name: `"AVX-512"`,
/// `"AVX2"`, or `"baseline"` (the target's default instructions: SSE2 on x86-64). Figures of
/// speed depend on it: name it beside them.
pub fn widest_simd_name() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return "AVX-512";
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            return "AVX2";
        }
    }
    "baseline"
}
