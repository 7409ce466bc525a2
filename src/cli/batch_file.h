// Reading a packed batch from a safetensors file (input_ids, optional cu_seqlens and labels), as
// the inspection commands take it.
#pragma once

#include <string>

#include "model/batch.h"

namespace deltatune::cli {

Batch read_batch_file(const std::string& path, bool need_labels);

}  // namespace deltatune::cli
