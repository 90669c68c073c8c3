# Host dependencies, all from the distribution's packages (Debian: libfmt-dev,
# libcli11-dev, nlohmann-json3-dev, zlib1g-dev, libopenblas-dev, googletest).
find_package(fmt REQUIRED)
find_package(CLI11 REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(ZLIB REQUIRED)
find_package(Threads REQUIRED)

# CPU GEMM for the CPU backend's convolution and dense layers. OpenBLAS ships a CMake
# config on Debian; FindBLAS is the portable fallback. cblas.h must be reachable.
find_package(OpenBLAS CONFIG QUIET)
if(OpenBLAS_FOUND)
  add_library(cnn_cblas INTERFACE)
  target_include_directories(cnn_cblas INTERFACE ${OpenBLAS_INCLUDE_DIRS})
  target_link_libraries(cnn_cblas INTERFACE ${OpenBLAS_LIBRARIES})
else()
  set(BLA_VENDOR OpenBLAS)
  find_package(BLAS REQUIRED)
  find_path(CNN_CBLAS_INCLUDE cblas.h PATH_SUFFIXES openblas REQUIRED)
  add_library(cnn_cblas INTERFACE)
  target_include_directories(cnn_cblas INTERFACE ${CNN_CBLAS_INCLUDE})
  target_link_libraries(cnn_cblas INTERFACE BLAS::BLAS)
endif()

if(CNN_BUILD_TESTS)
  # GoogleTest: the installed package, or the sources in CNN_GTEST_SOURCE_DIR (the GPU
  # machine has no Debian packages; the GPU check script carries the sources there).
  if(CNN_GTEST_SOURCE_DIR)
    set(INSTALL_GTEST OFF CACHE BOOL "" FORCE)
    add_subdirectory(${CNN_GTEST_SOURCE_DIR} ${CMAKE_BINARY_DIR}/_gtest EXCLUDE_FROM_ALL)
    add_library(GTest::gtest ALIAS gtest)
    add_library(GTest::gtest_main ALIAS gtest_main)
  else()
    find_package(GTest REQUIRED)
  endif()
endif()
