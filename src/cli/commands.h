#pragma once

namespace deltatune::cli {

int run(int argc, char** argv);

}  // namespace deltatune::cli
