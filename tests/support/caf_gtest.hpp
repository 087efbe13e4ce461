// Makes CAF 0.17's deterministic test DSL (caf/test/dsl.hpp) usable from
// GoogleTest: CAF's check macros report to gtest. Any number of a test
// binary's translation units may include this header; the binary also links
// tests/support/caf_gtest.cpp, which defines the DSL engine's symbols
// (caf/test/unit_test_impl.hpp) without CAF's own main().
#pragma once

// dsl.hpp uses a FAIL(msg) macro of its own; keep gtest's as GTEST_FAIL().
#define GTEST_DONT_DEFINE_FAIL 1
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>

#define CAF_TEST_NO_MAIN
#include <caf/test/unit_test.hpp>

#undef CAF_FAIL
#undef CAF_REQUIRE
#undef CAF_REQUIRE_EQUAL
#undef CAF_CHECK
#undef CAF_CHECK_EQUAL
#undef CAF_MESSAGE

// Must not throw: dsl.hpp evaluates expectations in noexcept destructors.
// Report to gtest, then abort; CTest runs every TEST in its own process.
#define CAF_FAIL(msg)                                                                              \
  do {                                                                                             \
    std::ostringstream caf_gtest_os_;                                                              \
    caf_gtest_os_ << msg; /* NOLINT(bugprone-macro-parentheses): msg is a << chain */              \
    ADD_FAILURE() << caf_gtest_os_.str();                                                          \
    std::fflush(stdout);                                                                           \
    std::abort();                                                                                  \
  } while (false)
#define CAF_REQUIRE(...)                                                                           \
  do {                                                                                             \
    if (!(__VA_ARGS__))                                                                            \
      CAF_FAIL("requirement failed: " #__VA_ARGS__);                                               \
  } while (false)
#define CAF_REQUIRE_EQUAL(x, y)                                                                    \
  do {                                                                                             \
    if (!((x) == (y)))                                                                             \
      CAF_FAIL("requirement failed: " #x " == " #y);                                               \
  } while (false)
#define CAF_CHECK(...) EXPECT_TRUE(__VA_ARGS__)
#define CAF_CHECK_EQUAL(x, y) EXPECT_TRUE((x) == (y)) << #x " == " #y
#define CAF_MESSAGE(msg)                                                                           \
  do {                                                                                             \
  } while (false)
#define FAIL(msg) CAF_FAIL(msg)

#include <caf/test/dsl.hpp>

/// Requests a `T` from `dst` on a deterministic fixture (`self`, `sched`,
/// `sys` of test_coordinator_fixture) and runs the scheduler, but not the
/// clock: the fixture's own request<T>() also fires timers, and an actor's
/// periodic timers would keep it running forever. A missing answer or an
/// error fails the test and gives a default T.
template <class T, class Fixture, class Handle, class... Ts>
T ask_and_run(Fixture& fx, const Handle& dst, Ts... xs) {
  auto hdl = fx.self->request(dst, caf::infinite, xs...);
  fx.sched.run();
  T out{};
  if (fx.self->mailbox().empty()) {
    ADD_FAILURE() << "no reply";
    return out;
  }
  hdl.receive([&](T& x) { out = std::move(x); },
              [&](caf::error& e) { ADD_FAILURE() << fx.sys.render(e); });
  return out;
}
