# Warnings for every target of the project: cnn_set_warnings(<target>).
function(cnn_set_warnings target)
  set(cxx_flags -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion
                -Wnon-virtual-dtor -Wold-style-cast -Woverloaded-virtual)
  if(CNN_WARNINGS_AS_ERRORS)
    list(APPEND cxx_flags -Werror)
  endif()
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:${cxx_flags}>)
  # nvcc: host-compiler warnings through -Xcompiler, device warnings as errors when asked.
  set(cuda_flags -Xcompiler=-Wall,-Wextra --Werror=all-warnings)
  if(NOT CNN_WARNINGS_AS_ERRORS)
    set(cuda_flags -Xcompiler=-Wall,-Wextra)
  endif()
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:${cuda_flags}>)
endfunction()
