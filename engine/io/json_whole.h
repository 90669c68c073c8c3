// Whole numbers from JSON read out of a file.
//
// nlohmann::json's get<int>() converts a number written with a fraction or an exponent
// (2.5, 1e300) by a plain cast, which is undefined behaviour when the value does not fit,
// and it cuts an integer that does not fit without a word. json_whole<T> returns only an
// integer that T holds; anything else throws the type_error that get<T>() throws for a
// value of the wrong type, so the callers' handlers report it the same way.
#pragma once

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>

namespace cnn {

template <class T>
T json_whole(const nlohmann::json& j) {
  static_assert(std::is_integral_v<T> && !std::is_same_v<T, bool>, "an integer type");
  constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<T>::max());
  if (j.is_number_unsigned()) {
    const auto v = j.get<uint64_t>();
    if (v <= kMax) return static_cast<T>(v);
  } else if (j.is_number_integer()) {  // negative
    const auto v = j.get<int64_t>();
    if (std::is_signed_v<T> && v >= static_cast<int64_t>(std::numeric_limits<T>::min()))
      return static_cast<T>(v);
  }
  throw nlohmann::json::type_error::create(
      302,
      "type must be a whole number from " + std::to_string(std::numeric_limits<T>::min()) + " to " +
          std::to_string(std::numeric_limits<T>::max()) + ", but is " +
          (j.is_number() ? j.dump() : std::string(j.type_name())),
      &j);
}

}  // namespace cnn
