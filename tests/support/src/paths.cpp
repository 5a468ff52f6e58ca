#include "wisp/test/paths.h"

namespace wisp::test {

std::string build_dir() { return WISP_BUILD_DIR; }
std::string source_dir() { return WISP_SOURCE_DIR; }
std::string binary_path(const std::string &name) { return build_dir() + "/bin/" + name; }
std::string image_path(const std::string &name) { return build_dir() + "/images/" + name + ".elf"; }

}  // namespace wisp::test
