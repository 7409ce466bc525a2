#include "train/checkpoint.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "core/error.h"
#include "io/json_file.h"
#include "io/safetensors.h"

namespace deltatune {

namespace fs = std::filesystem;

nlohmann::json TrainerState::to_json() const {
  return {{"global_step", global_step}, {"total_steps", total_steps}, {"seed", seed},
          {"tokens_seen", tokens_seen}, {"bad_steps", bad_steps},     {"elapsed_seconds", elapsed_seconds}};
}

TrainerState TrainerState::from_json(const nlohmann::json& j, const std::string& where) {
  TrainerState s;
  try {
    s.global_step = j.at("global_step").get<int64_t>();
    s.total_steps = j.at("total_steps").get<int64_t>();
    s.seed = j.at("seed").get<uint64_t>();
    s.tokens_seen = j.at("tokens_seen").get<int64_t>();
    s.bad_steps = j.at("bad_steps").get<int64_t>();
    s.elapsed_seconds = j.at("elapsed_seconds").get<double>();
  } catch (const nlohmann::json::exception& e) {
    fail(where, ": ", e.what());
  }
  return s;
}

std::string save_checkpoint(const std::string& output_dir, const LoraAdapter& adapter, AdamW& optimizer,
                            const TrainerState& state, const std::string& base_model) {
  const fs::path final_dir = fs::path(output_dir) / ("checkpoint-" + std::to_string(state.global_step));
  const fs::path tmp = fs::path(output_dir) / (".checkpoint-" + std::to_string(state.global_step) + ".tmp-" +
                                               std::to_string(::getpid()));
  fs::remove_all(tmp);
  try {
    fs::create_directories(tmp);
    adapter.save_peft(tmp.string(), base_model, DType::F32);
    std::vector<NamedTensor> moments;
    for (size_t i = 0; i < optimizer.moments().size(); ++i)
      moments.push_back({(i % 2 == 0 ? "m." : "v.") + std::to_string(i / 2), optimizer.moments()[i].view()});
    write_safetensors((tmp / "optimizer.safetensors").string(), moments,
                      {{"steps_done", std::to_string(optimizer.steps_done())}});
    write_json_file_atomic((tmp / "trainer_state.json").string(), state.to_json());
    // Swap the finished folder in: an older checkpoint of the same step goes only after the new
    // one is complete.
    const fs::path old = fs::path(final_dir.string() + ".old");
    if (fs::exists(final_dir)) fs::rename(final_dir, old);
    fs::rename(tmp, final_dir);
    fs::remove_all(old);
  } catch (const fs::filesystem_error& e) {
    std::error_code ignore;
    fs::remove_all(tmp, ignore);
    fail("saving checkpoint ", final_dir.string(), ": ", e.what());
  } catch (const Error& e) {
    std::error_code ignore;
    fs::remove_all(tmp, ignore);
    fail("saving checkpoint ", final_dir.string(), ": ", e.what());
  }
  return final_dir.string();
}

TrainerState load_checkpoint(const std::string& folder, LoraAdapter& adapter, AdamW& optimizer,
                             const ModelConfig& model) {
  return with_context("resuming from " + folder, [&] {
    const LoraAdapter saved = LoraAdapter::load_peft(folder, model, adapter.param_dtype());
    DT_CHECK(saved.modules().size() == adapter.modules().size(), "the checkpoint adapts ", saved.modules().size(),
             " modules, the config ", adapter.modules().size(), ": was the config changed?");
    for (LoraModule& m : adapter.modules()) {
      const LoraModule* s = saved.find(m.layer, m.kind);
      DT_CHECK(s && s->A.view().shape_vector() == m.A.view().shape_vector(), "module ", m.name,
               " is missing from the checkpoint or has another rank");
      std::memcpy(m.A.view().data, s->A.view().data, m.A.view().nbytes());
      std::memcpy(m.B.view().data, s->B.view().data, m.B.view().nbytes());
    }
    const SafetensorsFile opt((fs::path(folder) / "optimizer.safetensors").string());
    auto& moments = optimizer.moments();
    DT_CHECK(opt.entries().size() == moments.size(), opt.path(), ": ", opt.entries().size(),
             " optimizer tensors, expected ", moments.size());
    for (size_t i = 0; i < moments.size(); ++i) {
      const Tensor t = opt.tensor((i % 2 == 0 ? "m." : "v.") + std::to_string(i / 2));
      DT_CHECK(t.dtype == moments[i].dtype() && t.numel() == moments[i].numel(), opt.path(),
               ": optimizer tensor ", i, " does not match the adapter");
      std::memcpy(moments[i].view().data, t.data, t.nbytes());
    }
    const auto it = opt.metadata().find("steps_done");
    DT_CHECK(it != opt.metadata().end(), opt.path(), ": missing steps_done");
    optimizer.set_steps_done(std::stoll(it->second));
    const std::string state_path = (fs::path(folder) / "trainer_state.json").string();
    return TrainerState::from_json(read_json_file(state_path), state_path);
  });
}

std::vector<std::string> list_checkpoints(const std::string& output_dir) {
  std::vector<std::pair<int64_t, std::string>> found;
  if (!fs::is_directory(output_dir)) return {};
  for (const auto& e : fs::directory_iterator(output_dir)) {
    const std::string name = e.path().filename().string();
    if (!e.is_directory() || name.rfind("checkpoint-", 0) != 0) continue;
    const std::string digits = name.substr(11);
    if (digits.empty() || !std::all_of(digits.begin(), digits.end(), ::isdigit)) continue;
    found.push_back({std::stoll(digits), e.path().string()});
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(f.second);
  return out;
}

void prune_checkpoints(const std::string& output_dir, int64_t keep) {
  if (keep <= 0) return;
  const std::vector<std::string> all = list_checkpoints(output_dir);
  for (size_t i = 0; i + size_t(keep) < all.size(); ++i) fs::remove_all(all[i]);
}

}  // namespace deltatune
