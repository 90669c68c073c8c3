# The command-line suite on the simulated device (included from tests/CMakeLists.txt in a
# build without CUDA, after cnn_sim is defined).
add_executable(test_cli_sim ${CMAKE_CURRENT_SOURCE_DIR}/sim/cli/test_cli_sim.cpp)
target_include_directories(test_cli_sim PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
# The CPU engine for the PNG files the filter test writes and reads.
target_link_libraries(test_cli_sim PRIVATE cnn_engine GTest::gtest GTest::gtest_main)
add_dependencies(test_cli_sim cnn_sim)
target_compile_definitions(test_cli_sim PRIVATE
  CNN_SIM_BINARY="$<TARGET_FILE:cnn_sim>"
  CNN_TEST_SHARED_DATA="${PROJECT_SOURCE_DIR}/../shared/data")
cnn_set_warnings(test_cli_sim)
gtest_discover_tests(test_cli_sim DISCOVERY_TIMEOUT 60 PROPERTIES LABELS gpu_sim)
