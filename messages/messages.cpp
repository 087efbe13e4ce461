#include "messages/messages.hpp"

namespace sil {

caf::error to_caf_error(const sil::error& err) {
  return caf::error{static_cast<std::uint8_t>(err.code), error_category,
                    caf::make_message(err.message)};
}

caf::error make_caf_error(errc code, std::string message) {
  return to_caf_error(sil::error{code, std::move(message)});
}

sil::error from_caf_error(const caf::error& err) {
  if (err.category() == error_category) {
    std::string msg;
    const auto& ctx = err.context();
    if (ctx.match_elements<std::string>())
      msg = ctx.get_as<std::string>(0);
    return {static_cast<errc>(err.code()), std::move(msg)};
  }
  if (err == caf::sec::request_timeout)
    return {errc::encoder_timeout, "request timed out"};
  return {errc::internal, caf::to_string(err)};
}

void register_message_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<embedding>("sil::embedding");
  cfg.add_message_type<std::vector<embedding>>("std::vector<sil::embedding>");
  cfg.add_message_type<predict_request>("sil::predict_request");
  cfg.add_message_type<predict_reply>("sil::predict_reply");
  cfg.add_message_type<encode_item>("sil::encode_item");
  cfg.add_message_type<encode_batch>("sil::encode_batch");
  cfg.add_message_type<encoded_batch>("sil::encoded_batch");
  cfg.add_message_type<cache_lookup>("sil::cache_lookup");
  cfg.add_message_type<lookup_query>("sil::lookup_query");
  cfg.add_message_type<reuse_label>("sil::reuse_label");
  cfg.add_message_type<cache_snapshot>("sil::cache_snapshot");
  cfg.add_message_type<pool_snapshot>("sil::pool_snapshot");
  cfg.add_message_type<request_outcome>("sil::request_outcome");
  cfg.add_message_type<audit_candidate>("sil::audit_candidate");
  cfg.add_message_type<hit_batch>("sil::hit_batch");
  cfg.add_message_type<hit_outcomes>("sil::hit_outcomes");
  cfg.add_message_type<std::vector<prefix_key>>("std::vector<sil::prefix_key>");
  cfg.add_message_type<service_snapshot>("sil::service_snapshot");
  cfg.add_message_type<divergence_report>("sil::divergence_report");
  cfg.add_message_type<audit_snapshot>("sil::audit_snapshot");
  cfg.add_message_type<decision_record>("sil::decision_record");
  cfg.add_message_type<agent_snapshot>("sil::agent_snapshot");
  cfg.add_message_type<admin_command>("sil::admin_command");
  cfg.add_message_type<encoder_worker_actor>("sil::encoder_worker_actor");
  cfg.add_message_type<encoder_pool_actor>("sil::encoder_pool_actor");
  cfg.add_message_type<registry_actor>("sil::registry_actor");
  cfg.add_message_type<node_info>("sil::node_info");
  cfg.add_message_type<model_op>("sil::model_op");
  cfg.add_message_type<version_state>("sil::version_state");
  cfg.add_message_type<model_command>("sil::model_command");
  cfg.add_message_type<model_version_info>("sil::model_version_info");
  cfg.add_message_type<std::vector<model_version_info>>("std::vector<sil::model_version_info>");
  cfg.add_message_type<model_listing>("sil::model_listing");
  cfg.add_message_type<cache_policy>("sil::cache_policy");
  cfg.add_message_type<canary_verdict>("sil::canary_verdict");
  cfg.add_message_type<arm_view>("sil::arm_view");
  cfg.add_message_type<canary_view>("sil::canary_view");
  cfg.add_message_type<std::vector<canary_view>>("std::vector<sil::canary_view>");
  cfg.add_message_type<canary_decision>("sil::canary_decision");
  cfg.add_message_type<std::vector<canary_decision>>("std::vector<sil::canary_decision>");
  cfg.add_message_type<model_version_stats>("sil::model_version_stats");
  cfg.add_message_type<std::vector<model_version_stats>>("std::vector<sil::model_version_stats>");
  cfg.add_message_type<lane_refs>("sil::lane_refs");
  cfg.add_message_type<std::vector<lane_refs>>("std::vector<sil::lane_refs>");
  cfg.add_message_type<model_manager_actor>("sil::model_manager_actor");
  cfg.add_error_category(error_category,
                         [](std::uint8_t code, caf::atom_value, const caf::message& ctx) {
                           std::string out = "sil::";
                           out += to_string(static_cast<errc>(code));
                           if (ctx.match_elements<std::string>()) {
                             out += ": ";
                             out += ctx.get_as<std::string>(0);
                           }
                           return out;
                         });
}

} // namespace sil
