# Code generation for the engine's CPU code (the reference and the CPU backend's fast
# paths), through the INTERFACE target cnn_cpu_codegen.
#
# -ffp-contract=off, always: every multiply and add rounds as written. Where the target
# has FMA the compiler would otherwise fuse some of them, and the reference's results
# would depend on the instruction set; with it they do not, so a CNN_CPU_NATIVE build and
# a portable one give the same bits.
#
# CNN_CPU_NATIVE (ON by default): -march=native, the vector width of the machine that
# builds (AVX2, AVX-512) for loops such as batch norm's eight-lane sums: its forward and
# backward ran 1.3x to 1.6x faster with it than with the baseline SSE2 on this project's
# machines (AVX-512, vgg-small at batch 128, one thread). The binary then
# needs a CPU with the builder's instruction set: turn it OFF for a build meant to run
# elsewhere.
include(CheckCXXCompilerFlag)
option(CNN_CPU_NATIVE "Compile the engine's CPU code for the building machine's CPU (-march=native)" ON)
add_library(cnn_cpu_codegen INTERFACE)
target_compile_options(cnn_cpu_codegen INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-ffp-contract=off>)
if(CNN_CPU_NATIVE)
  check_cxx_compiler_flag(-march=native CNN_COMPILER_HAS_MARCH_NATIVE)
  if(CNN_COMPILER_HAS_MARCH_NATIVE)
    target_compile_options(cnn_cpu_codegen INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-march=native>)
  else()
    message(STATUS "CPU code: the compiler has no -march=native; baseline instruction set")
  endif()
endif()

# Loops over short rows (max pooling's, 7 or 14 windows in the zoo) never fill a 512-bit
# vector and spend their time in the remainder. With 128-bit vectors (cnn bench, vgg-small
# at batch 128, one thread) the first pool's forward went from 0.69 to 0.35 ms and its
# backward from 1.2 to 0.8 ms, the second's backward from 1.05 to 0.71 ms; the second's
# forward stayed about the same (0.29 to 0.35 ms).
# CNN_SHORT_ROW_FLAGS holds the flag where the compiler has it; engine/CMakeLists.txt
# gives it to those sources.
set(CNN_SHORT_ROW_FLAGS "")
if(CNN_CPU_NATIVE AND CNN_COMPILER_HAS_MARCH_NATIVE)
  check_cxx_compiler_flag(-mprefer-vector-width=128 CNN_COMPILER_HAS_PREFER_VECTOR_WIDTH)
  if(CNN_COMPILER_HAS_PREFER_VECTOR_WIDTH)
    set(CNN_SHORT_ROW_FLAGS -mprefer-vector-width=128)
  endif()
endif()
