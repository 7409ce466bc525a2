// deltatune: the command-line front end. Each subcommand lives in its own file and is a thin layer
// over the library.
#include <cstdio>
#include <exception>
#include <string>

#include "cli/commands.h"
#include "core/error.h"

int main(int argc, char** argv) {
  try {
    return deltatune::cli::run(argc, argv);
  } catch (const deltatune::Error& e) {
    std::fprintf(stderr, "deltatune: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "deltatune: internal error: %s\n", e.what());
    return 2;
  }
}
