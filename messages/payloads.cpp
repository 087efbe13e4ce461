#include "messages/payloads.hpp"

#include <limits>

namespace sil {

const char* to_string(embedding_source s) noexcept {
  switch (s) {
    case embedding_source::encoder:
      return "encoder";
    case embedding_source::cache:
      return "cache";
    case embedding_source::single_flight:
      return "single_flight";
  }
  return "unknown";
}

const char* to_string(comparison_kind k) noexcept {
  switch (k) {
    case comparison_kind::audit:
      return "audit";
    case comparison_kind::shadow:
      return "shadow";
    case comparison_kind::refusal:
      return "refusal";
  }
  return "unknown";
}

const char* to_string(model_op op) noexcept {
  switch (op) {
    case model_op::load:
      return "load";
    case model_op::warm:
      return "warm";
    case model_op::set_default:
      return "set_default";
    case model_op::unload:
      return "unload";
    case model_op::canary_start:
      return "canary_start";
    case model_op::canary_promote:
      return "canary_promote";
    case model_op::canary_abort:
      return "canary_abort";
  }
  return "unknown";
}

const char* to_string(admin_command c) noexcept {
  switch (c) {
    case admin_command::disable_cache:
      return "disable_cache";
    case admin_command::enable_cache:
      return "enable_cache";
    case admin_command::clear_cache:
      return "clear_cache";
    case admin_command::set_ttl:
      return "set_ttl";
    case admin_command::resume_agent:
      return "resume_agent";
  }
  return "unknown";
}

const char* to_string(decision_action a) noexcept {
  switch (a) {
    case decision_action::keep:
      return "keep";
    case decision_action::shorten_ttl:
      return "shorten_ttl";
    case decision_action::restore_ttl:
      return "restore_ttl";
    case decision_action::disable:
      return "disable";
    case decision_action::enable:
      return "enable";
    case decision_action::clear:
      return "clear";
    case decision_action::set_ttl:
      return "set_ttl";
    case decision_action::resume:
      return "resume";
  }
  return "unknown";
}

decision_action decision_of(agent_action a) noexcept {
  switch (a) {
    case agent_action::keep:
      break;
    case agent_action::shorten_ttl:
      return decision_action::shorten_ttl;
    case agent_action::restore_ttl:
      return decision_action::restore_ttl;
    case agent_action::disable:
      return decision_action::disable;
    case agent_action::enable:
      return decision_action::enable;
  }
  return decision_action::keep;
}

decision_action decision_of(admin_command c) noexcept {
  switch (c) {
    case admin_command::disable_cache:
      return decision_action::disable;
    case admin_command::enable_cache:
      return decision_action::enable;
    case admin_command::clear_cache:
      return decision_action::clear;
    case admin_command::set_ttl:
      break;
    case admin_command::resume_agent:
      return decision_action::resume;
  }
  return decision_action::set_ttl;
}

const char* to_string(node_state s) noexcept {
  switch (s) {
    case node_state::local:
      return "local";
    case node_state::up:
      return "up";
    case node_state::down:
      return "down";
    case node_state::joining:
      return "new";
  }
  return "unknown";
}

const char* to_string(route_label r) noexcept {
  switch (r) {
    case route_label::predict:
      return "predict";
    case route_label::health:
      return "health";
    case route_label::stats:
      return "stats";
    case route_label::metrics:
      return "metrics";
    case route_label::agent:
      return "agent";
    case route_label::admin:
      return "admin";
    case route_label::openapi:
      return "openapi";
    case route_label::metadata:
      return "metadata";
    case route_label::preflight:
      return "preflight";
    case route_label::other:
      return "other";
  }
  return "other";
}

std::int64_t max_age_ns_of(std::int64_t ms) noexcept {
  if (ms < 0)
    return -1;
  constexpr std::int64_t limit = std::numeric_limits<std::int64_t>::max() / 1000000;
  return ms >= limit ? std::numeric_limits<std::int64_t>::max() : ms * 1000000;
}

} // namespace sil
