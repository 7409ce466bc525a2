#include "cli/batch_file.h"

#include <vector>

#include "io/safetensors.h"

namespace deltatune::cli {

namespace {
std::vector<int64_t> read_int64_vector(const SafetensorsFile& file, const std::string& name) {
  const Tensor t = file.tensor(name);
  DT_CHECK(t.dtype == DType::I64 && t.ndim == 1, "'", name, "' must be a 1-D int64 tensor, got ",
           dtype_name(t.dtype), " ", t.shape_str());
  const int64_t* p = static_cast<const int64_t*>(t.data);
  return std::vector<int64_t>(p, p + t.numel());
}
}  // namespace

Batch read_batch_file(const std::string& path, bool need_labels) {
  return with_context(path, [&] {
    SafetensorsFile in(path);
    std::vector<int64_t> ids = read_int64_vector(in, "input_ids");
    std::vector<int64_t> cu, labels;
    if (in.find("cu_seqlens")) cu = read_int64_vector(in, "cu_seqlens");
    if (need_labels) {
      DT_CHECK(in.find("labels"), "missing 'labels' (int64 [T], -100 = not trained)");
      labels = read_int64_vector(in, "labels");
    }
    return make_batch(std::move(ids), std::move(cu), std::move(labels));
  });
}

}  // namespace deltatune::cli
