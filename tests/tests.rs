//! The one integration-test binary (ripgrep's layout): one module per area under `suite/`,
//! so the test suite links once.

mod suite;
