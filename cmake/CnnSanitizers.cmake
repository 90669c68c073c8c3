# Sanitizer and fuzzing builds. Both instrument every C++ target of the project (the
# flags are directory-wide, so set before any target is added); neither touches CUDA
# code, and both need -DCNN_WITH_CUDA=OFF (the CUDA runtime and ASan's shadow memory do
# not get along, and the sanitizer suite is about host code).
#
#   -DCNN_SANITIZE=address,undefined   gcc or clang; -O1 -g -fno-omit-frame-pointer and
#                                      -fno-sanitize-recover=all, so the first finding
#                                      fails the test (run with ASAN_OPTIONS and
#                                      UBSAN_OPTIONS halt_on_error=1, as scripts/test.sh
#                                      does). Any -fsanitize= names, comma-separated.
#   -DCNN_FUZZ=ON                      clang only: the libFuzzer targets in fuzz/, with
#                                      the engine built -fsanitize=fuzzer-no-link plus
#                                      CNN_SANITIZE (address,undefined when unset).
#
# Without CNN_FUZZ the fuzz targets still build, as plain programs that replay their
# corpus (a ctest test each), so they stay compiled and their seeds run in every suite.
set(CNN_SANITIZE "" CACHE STRING "Sanitizers for every C++ target, e.g. address,undefined")
option(CNN_FUZZ "Build the libFuzzer targets in fuzz/ (clang, CPU only)" OFF)

if(CNN_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "CNN_FUZZ=ON needs clang (libFuzzer), not ${CMAKE_CXX_COMPILER_ID}: "
                        "configure with -DCMAKE_CXX_COMPILER=clang++ (scripts/fuzz.sh does).")
  endif()
  if(NOT CNN_SANITIZE)
    set(CNN_SANITIZE "address,undefined")
  endif()
endif()

if(CNN_SANITIZE)
  if(CNN_WITH_CUDA)
    message(FATAL_ERROR "CNN_SANITIZE / CNN_FUZZ builds are CPU-only: add -DCNN_WITH_CUDA=OFF.")
  endif()
  string(REPLACE ";" "," _cnn_sanitize "${CNN_SANITIZE}")
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND _cnn_sanitize MATCHES "(^|,)undefined(,|$)")
    # clang's "undefined" includes it, gcc's does not: a float converted to an integer
    # that cannot hold it (a reader casting a JSON number, say).
    string(APPEND _cnn_sanitize ",float-cast-overflow")
  endif()
  set(_cnn_san_compile -fsanitize=${_cnn_sanitize} -fno-sanitize-recover=all
                       -fno-omit-frame-pointer -g -O1)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # GCC's manual: sanitizers raise the rate of false -Wmaybe-uninitialized warnings
    # (std::regex and std::function trip it at -O1); the normal build keeps the warning.
    list(APPEND _cnn_san_compile -Wno-maybe-uninitialized)
  endif()
  if(CNN_FUZZ)
    # Coverage feedback for libFuzzer in every object; only the fuzz targets link its main.
    list(APPEND _cnn_san_compile -fsanitize=fuzzer-no-link)
  endif()
  # After the build type's flags on the command line, so -O1 wins over -O2/-O3.
  add_compile_options("$<$<COMPILE_LANGUAGE:C,CXX>:${_cnn_san_compile}>")
  add_link_options(-fsanitize=${_cnn_sanitize})
  message(STATUS "sanitizers: ${_cnn_sanitize}")
endif()
if(CNN_FUZZ)
  message(STATUS "fuzzing: libFuzzer targets in fuzz/")
endif()
