// The HTTP edge's pure rules: message framing (RFC 9112), the bounds on
// durations a request may carry, and the bearer scheme (RFC 7235).
#include <gtest/gtest.h>

#include <string>

#include "http/codec.hpp"
#include "http/framing.hpp"

namespace sil::http_api {
namespace {

status framing(std::vector<std::string_view> te, std::size_t cl = 0, unsigned version = 11) {
  framing_fields f;
  f.version = version;
  f.transfer_encodings = std::move(te);
  f.content_lengths = cl;
  return check_framing(f);
}

std::string message_of(const status& s) {
  return s ? std::string{} : s.error().message;
}

TEST(Framing, PlainBodiesAndASingleChunkedCodingPass) {
  EXPECT_TRUE(framing({}));
  EXPECT_TRUE(framing({}, 1));
  EXPECT_TRUE(framing({"chunked"}));
  EXPECT_TRUE(framing({"Chunked"}));
  EXPECT_TRUE(framing({" chunked "}));
}

TEST(Framing, AFinalCodingOtherThanChunkedIsRefused) {
  for (auto te : {"xchunked", "gzip", "identity", "chunked, gzip", "chunkedx"}) {
    auto st = framing({te});
    ASSERT_FALSE(st) << te;
    EXPECT_EQ(st.error().code, errc::bad_request);
    EXPECT_NE(message_of(st).find("final transfer coding must be chunked"), std::string::npos)
      << te << ": " << message_of(st);
  }
}

TEST(Framing, AnElementThatIsNotABareCodingIsRefused) {
  // Found by the fuzzer: ";chunked, chunked" passed as one chunked coding
  // (the empty coding before ';' was dropped), while Beast's parser stops
  // reading the list at the ';' and so does not read the body as chunked.
  for (auto te : {";chunked, chunked", "chunked;x", "chunked; q=1", "gzip;q=1, chunked",
                  "\"chunked\"", "chunked x", "chu\tnked", ";", "chunked,;"}) {
    auto st = framing({te});
    ASSERT_FALSE(st) << te;
    EXPECT_EQ(st.error().code, errc::bad_request);
    EXPECT_NE(message_of(st).find("is not a bare transfer coding"), std::string::npos)
      << te << ": " << message_of(st);
  }
  // Empty list elements are allowed (RFC 9110 section 5.6.1).
  EXPECT_TRUE(framing({", chunked ,"}));
  EXPECT_TRUE(framing({"\tchunked"}));
}

TEST(Framing, ChunkedTwiceOrAfterAnotherCodingIsRefused) {
  auto twice = framing({"chunked, chunked"});
  ASSERT_FALSE(twice);
  EXPECT_NE(message_of(twice).find("only once"), std::string::npos);
  auto split = framing({"chunked", "chunked"}); // two fields count as one list
  ASSERT_FALSE(split);
  auto gzip = framing({"gzip, chunked"});
  ASSERT_FALSE(gzip);
  EXPECT_NE(message_of(gzip).find("'gzip' is not supported"), std::string::npos);
  EXPECT_FALSE(framing({"gzip", "chunked"}));
}

TEST(Framing, TransferEncodingWithContentLengthOrInHttp10IsRefused) {
  auto both = framing({"chunked"}, 1);
  ASSERT_FALSE(both);
  EXPECT_NE(message_of(both).find("both Transfer-Encoding and Content-Length"), std::string::npos);
  auto old = framing({"chunked"}, 0, 10);
  ASSERT_FALSE(old);
  EXPECT_NE(message_of(old).find("HTTP/1.0"), std::string::npos);
  EXPECT_FALSE(framing({""}));
  EXPECT_FALSE(framing({" , "}));
}

std::string body_with(const std::string& field) {
  std::string row = "[";
  for (int i = 0; i < 32; ++i)
    row += i == 0 ? "0.5" : ",0.5";
  row += "]";
  return "{\"features\":[" + row + "]," + field + "}";
}

TEST(RequestBounds, MaxAgeIsBoundedToAYearWhereItIsDecoded) {
  auto ok = decode_predict(body_with("\"max_age_ms\":31536000000"), {});
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->max_age_ms, max_age_limit_ms);
  for (auto v : {"31536000001", "18446744073710", "9.2e15", "1e300", "-5", "1.5"}) {
    auto r = decode_predict(body_with(std::string{"\"max_age_ms\":"} + v), {});
    ASSERT_FALSE(r) << v;
    EXPECT_EQ(r.error().code, errc::bad_request);
    EXPECT_NE(r.error().message.find("'max_age_ms'"), std::string::npos) << r.error().message;
  }
  // The largest accepted value still converts to nanoseconds exactly.
  EXPECT_EQ(max_age_ns_of(max_age_limit_ms), max_age_limit_ms * 1'000'000);
}

TEST(RequestBounds, TimeoutMsIsAnIntegerBetweenOneAndTenMinutes) {
  auto ok = decode_predict(body_with("\"timeout_ms\":250"), {});
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->timeout_ms, 250);
  EXPECT_EQ(decode_predict(body_with("\"use_cache\":true"), {})->timeout_ms, -1);
  for (auto v : {"0", "-1", "600001", "1e12", "2.5", "\"5\"", "null"}) {
    auto r = decode_predict(body_with(std::string{"\"timeout_ms\":"} + v), {});
    ASSERT_FALSE(r) << v;
    EXPECT_NE(r.error().message.find("'timeout_ms'"), std::string::npos) << r.error().message;
  }
}

TEST(BearerScheme, IsCaseInsensitiveAndAllowsSeveralSpaces) {
  EXPECT_TRUE(check_admin("Bearer s3cret", "s3cret"));
  EXPECT_TRUE(check_admin("bearer s3cret", "s3cret"));
  EXPECT_TRUE(check_admin("BEARER s3cret", "s3cret"));
  EXPECT_TRUE(check_admin("Bearer   s3cret", "s3cret"));
  for (auto bad : {"Bearer", "Bearer ", "Bearers3cret", "Basic s3cret", "Bearer s3cre",
                   "Bearer s3cret2", "Bearer\ts3cret"}) {
    auto st = check_admin(bad, "s3cret");
    ASSERT_FALSE(st) << bad;
    EXPECT_EQ(st.error().code, errc::unauthorized) << bad;
  }
}

TEST(StatusMapping, TheNewEdgeErrorsHaveTheirStatuses) {
  EXPECT_EQ(status_for(errc::request_timeout), 408u);
  EXPECT_EQ(status_for(errc::uri_too_long), 414u);
  EXPECT_EQ(status_for(errc::header_too_large), 431u);
  EXPECT_EQ(status_for(errc::cancelled), 499u);
  EXPECT_EQ(status_for(errc::overloaded), 503u);
  EXPECT_EQ(status_for(errc::conflict), 409u);
  EXPECT_EQ(status_for(errc::unprocessable), 422u);
}

} // namespace
} // namespace sil::http_api
