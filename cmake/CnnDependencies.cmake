# Host dependencies, all from the distribution's packages (Debian: libfmt-dev,
# libcli11-dev, nlohmann-json3-dev, zlib1g-dev, libpng-dev, libopenblas-dev, googletest).
#
# CNN_VENDOR_DIR instead names a folder of carried headers and libraries (made by
# scripts/gpu_check.sh prepare) for a machine without those packages: include/ with fmt,
# CLI, nlohmann, zlib.h, png.h; lib/ with libz.so, libpng.so and libpng16.so.16 (its
# soname). fmt is then used header-only.
set(CNN_VENDOR_DIR "" CACHE PATH "Carried dependencies (include/, lib/) instead of packages")
find_package(Threads REQUIRED)
if(CNN_VENDOR_DIR)
  message(STATUS "dependencies from ${CNN_VENDOR_DIR}")
  add_library(fmt::fmt INTERFACE IMPORTED)
  target_include_directories(fmt::fmt INTERFACE ${CNN_VENDOR_DIR}/include)
  target_compile_definitions(fmt::fmt INTERFACE FMT_HEADER_ONLY=1)
  add_library(CLI11::CLI11 INTERFACE IMPORTED)
  target_include_directories(CLI11::CLI11 INTERFACE ${CNN_VENDOR_DIR}/include)
  add_library(nlohmann_json::nlohmann_json INTERFACE IMPORTED)
  target_include_directories(nlohmann_json::nlohmann_json INTERFACE ${CNN_VENDOR_DIR}/include)
  set(ZLIB_ROOT ${CNN_VENDOR_DIR})
  find_package(ZLIB REQUIRED)
  set(PNG_ROOT ${CNN_VENDOR_DIR})
  find_package(PNG 1.6.29 REQUIRED)  # libpng: PNG pictures and inputs (engine/io/png)
else()
  find_package(fmt REQUIRED)
  find_package(CLI11 REQUIRED)
  find_package(nlohmann_json 3.10 REQUIRED)
  find_package(ZLIB REQUIRED)
  find_package(PNG 1.6.29 REQUIRED)  # libpng: PNG pictures and inputs (engine/io/png)
endif()

# CPU GEMM for the CPU backend's convolution and dense layers: OpenBLAS (Debian ships a
# CMake config; FindBLAS is the portable fallback), or none (plain loops; for machines
# without the package, such as the GPU machine, where the CPU path only serves tests).
set(CNN_CPU_BLAS "openblas" CACHE STRING "CPU GEMM: openblas or none")
set_property(CACHE CNN_CPU_BLAS PROPERTY STRINGS openblas none)
add_library(cnn_cblas INTERFACE)
if(CNN_CPU_BLAS STREQUAL "openblas")
  find_package(OpenBLAS CONFIG QUIET)
  if(OpenBLAS_FOUND)
    target_include_directories(cnn_cblas INTERFACE ${OpenBLAS_INCLUDE_DIRS})
    target_link_libraries(cnn_cblas INTERFACE ${OpenBLAS_LIBRARIES})
  else()
    set(BLA_VENDOR OpenBLAS)
    find_package(BLAS REQUIRED)
    find_path(CNN_CBLAS_INCLUDE cblas.h PATH_SUFFIXES openblas REQUIRED)
    target_include_directories(cnn_cblas INTERFACE ${CNN_CBLAS_INCLUDE})
    target_link_libraries(cnn_cblas INTERFACE BLAS::BLAS)
  endif()
  target_compile_definitions(cnn_cblas INTERFACE CNN_HAVE_CBLAS=1)
elseif(CNN_CPU_BLAS STREQUAL "none")
  target_compile_definitions(cnn_cblas INTERFACE CNN_HAVE_CBLAS=0)
else()
  message(FATAL_ERROR "CNN_CPU_BLAS must be openblas or none, not '${CNN_CPU_BLAS}'")
endif()

# Threads for the CPU backend: OpenMP, which GCC and Clang ship (libgomp, libomp). Without
# it (CNN_OPENMP=OFF, or a compiler that lacks it) the CPU backend runs on one thread.
option(CNN_OPENMP "Run the CPU backend's convolutions and pooling on several threads" ON)
add_library(cnn_openmp INTERFACE)
if(CNN_OPENMP)
  find_package(OpenMP COMPONENTS CXX)
endif()
if(CNN_OPENMP AND OpenMP_CXX_FOUND)
  target_link_libraries(cnn_openmp INTERFACE OpenMP::OpenMP_CXX)
  target_compile_definitions(cnn_openmp INTERFACE CNN_HAVE_OPENMP=1)
else()
  message(STATUS "CPU backend: one thread (no OpenMP)")
  target_compile_definitions(cnn_openmp INTERFACE CNN_HAVE_OPENMP=0)
endif()

if(CNN_BUILD_TESTS)
  # GoogleTest: the installed package, or the sources in CNN_GTEST_SOURCE_DIR (the GPU
  # machine has no Debian packages; the GPU check script carries the sources there).
  if(CNN_GTEST_SOURCE_DIR)
    set(INSTALL_GTEST OFF CACHE BOOL "" FORCE)
    add_subdirectory(${CNN_GTEST_SOURCE_DIR} ${CMAKE_BINARY_DIR}/_gtest EXCLUDE_FROM_ALL)
    if(NOT TARGET GTest::gtest)  # GoogleTest 1.11+ defines these itself
      add_library(GTest::gtest ALIAS gtest)
      add_library(GTest::gtest_main ALIAS gtest_main)
    endif()
  else()
    find_package(GTest REQUIRED)
  endif()
endif()
