// Where a test finds build products.
#pragma once

#include <string>

namespace wisp::test {

std::string build_dir();                          // the CMake build tree
std::string source_dir();                         // the source tree
std::string binary_path(const std::string &name); // build/bin/<name>
std::string image_path(const std::string &name);  // build/images/<name>.elf

}  // namespace wisp::test
