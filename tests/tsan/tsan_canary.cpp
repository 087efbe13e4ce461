// ThreadSanitizer canary: a deliberate data race between a CAF actor and a
// plain std::thread on a plain int. tests/tsan.supp silences the reports of
// CAF's message hand-offs (its mailbox is not instrumented); this race must
// still be reported, or the suppressions hide real races too.
// tsan_canary_check.cmake runs it under the tsan preset's TSAN_OPTIONS and
// requires the report. Built and registered only in the tsan build.
#include <caf/all.hpp>

#include <chrono>
#include <cstdio>
#include <thread>

// Written by the actor's handler and by the thread, with nothing ordering
// the two: the race the canary exists for. External linkage, so that the
// compiler cannot prove the stores dead and drop them (it did, when the
// variable was internal).
int canary_value = 0; // NOLINT(cppcoreguidelines-avoid-non-const-global-variables)

namespace {

constexpr int rounds = 200;

caf::behavior writer() {
  return {
    [](int v) { canary_value += v; }, // read and write
  };
}

} // namespace

int main() {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto actor = sys.spawn(writer);
  std::thread plain{[] {
    for (int i = 0; i < rounds; ++i) {
      canary_value -= i; // unsynchronized read and write
      std::this_thread::sleep_for(std::chrono::microseconds{200});
    }
  }};
  for (int i = 0; i < rounds; ++i) {
    caf::anon_send(actor, i);
    std::this_thread::sleep_for(std::chrono::microseconds{200});
  }
  plain.join();
  caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
  std::printf("canary: %d rounds done, value %d\n", rounds, canary_value);
  return 0;
}
