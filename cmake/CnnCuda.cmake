# The CUDA toolkit, cuBLAS and cuDNN. Asking for CUDA (CNN_WITH_CUDA=ON, the default)
# and not having it is a hard error: no silent CPU-only build.
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES 90 CACHE STRING "CUDA architectures (90 = H100/H200)")
endif()
include(CheckLanguage)
check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER)
  message(FATAL_ERROR "CNN_WITH_CUDA=ON but no CUDA compiler was found. Install the CUDA "
                      "toolkit (nvcc on PATH or CMAKE_CUDA_COMPILER) or configure with "
                      "-DCNN_WITH_CUDA=OFF for a CPU-only build.")
endif()
enable_language(CUDA)
set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
# CUDA 12: the three-argument cudaGraphInstantiate, and cuBLAS's user workspace in graphs.
find_package(CUDAToolkit 12.0 REQUIRED)

# cuDNN: found from cudnn_version.h, version read from it.
find_path(CUDNN_INCLUDE_DIR cudnn_version.h
          HINTS ${CUDAToolkit_INCLUDE_DIRS} ENV CUDNN_ROOT PATH_SUFFIXES include)
find_library(CUDNN_LIBRARY NAMES cudnn libcudnn.so.9
             HINTS ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT}/lib ENV CUDNN_ROOT
             PATH_SUFFIXES lib lib64)
if(NOT CUDNN_INCLUDE_DIR OR NOT CUDNN_LIBRARY)
  message(FATAL_ERROR "CNN_WITH_CUDA=ON but cuDNN was not found (cudnn_version.h and "
                      "libcudnn). Set CUDNN_ROOT, or configure with -DCNN_WITH_CUDA=OFF.")
endif()
file(STRINGS ${CUDNN_INCLUDE_DIR}/cudnn_version.h _cudnn_lines REGEX "#define CUDNN_(MAJOR|MINOR|PATCHLEVEL) ")
foreach(_l IN LISTS _cudnn_lines)
  if(_l MATCHES "#define CUDNN_(MAJOR|MINOR|PATCHLEVEL) +([0-9]+)")
    set(CUDNN_${CMAKE_MATCH_1} ${CMAKE_MATCH_2})
  endif()
endforeach()
message(STATUS "cuDNN ${CUDNN_MAJOR}.${CUDNN_MINOR}.${CUDNN_PATCHLEVEL}: ${CUDNN_LIBRARY}")
# cuDNN 9: the error messages come from cudnnGetLastErrorString, which cuDNN 8 lacks.
if(CUDNN_MAJOR LESS 9)
  message(FATAL_ERROR "cuDNN 9 or newer is required, found ${CUDNN_MAJOR}.${CUDNN_MINOR}")
endif()
add_library(cnn_cudnn INTERFACE)
target_include_directories(cnn_cudnn INTERFACE ${CUDNN_INCLUDE_DIR})
target_link_libraries(cnn_cudnn INTERFACE ${CUDNN_LIBRARY})
