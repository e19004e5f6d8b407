# SPDX-License-Identifier: MIT
# The README's C++ quick start must be the file that CI compiles:
#   cmake -DREADME=README.md -DFILE=examples/quickstart.cpp -P tests/readme_snippet.cmake
# The README block is the ```cpp fence right after the line
# "<!-- snippet: examples/quickstart.cpp -->"; the file is compared without
# its first line (the SPDX identifier).  Fails with both texts on mismatch.
file(READ "${README}" readme)
file(READ "${FILE}" code)
string(REGEX REPLACE "^// SPDX-License-Identifier:[^\n]*\n" "" code "${code}")
set(marker "<!-- snippet: examples/quickstart.cpp -->\n```cpp\n")
string(FIND "${readme}" "${marker}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "README: no \"<!-- snippet: examples/quickstart.cpp -->\" followed by a cpp block")
endif()
string(LENGTH "${marker}" mlen)
math(EXPR start "${at} + ${mlen}")
string(SUBSTRING "${readme}" ${start} -1 rest)
string(FIND "${rest}" "```\n" end)
string(SUBSTRING "${rest}" 0 ${end} block)
if(NOT block STREQUAL code)
  message(FATAL_ERROR "README C++ quick start differs from ${FILE}:\n--- README\n${block}--- ${FILE}\n${code}")
endif()
message(STATUS "README C++ quick start == ${FILE}")
