// The DSL engine's symbols (non-inline definitions), once per test binary,
// with the check macros of caf_gtest.hpp.
#include "tests/support/caf_gtest.hpp"

#include <caf/test/unit_test_impl.hpp>
