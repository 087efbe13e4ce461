#include "core/model.hpp"

#include <Eigen/Core>
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>

#include "core/hash.hpp"

namespace sil {

// -- configuration ---------------------------------------------------------------

namespace {

constexpr std::size_t max_dim = 65536;
constexpr std::size_t max_parameters = std::size_t{1} << 28;

} // namespace

std::size_t parameter_count(const model_config& c) noexcept {
  std::size_t d = c.d_model;
  std::size_t f = c.ff_dim;
  std::size_t per_layer = 4 * (d * d + d) // wq, wk, wv, wo and their biases
                          + 2 * d         // ln1 gamma, beta
                          + d * f + f     // w1, b1
                          + f * d + d     // w2, b2
                          + 2 * d;        // ln2 gamma, beta
  return c.input_dim * d + d + c.layers * per_layer + d + 1;
}

status validate(const model_config& c) {
  auto check = [](std::size_t v, const char* what) -> status {
    if (v == 0 || v > max_dim)
      return {errc::invalid_config,
              std::string{"model "} + what + " must be in [1, 65536], got " + std::to_string(v)};
    return ok();
  };
  for (auto [v, what] :
       {std::pair{c.input_dim, "input_dim"}, std::pair{c.d_model, "d_model"},
        std::pair{c.heads, "heads"}, std::pair{c.layers, "layers"}, std::pair{c.ff_dim, "ff_dim"}})
    if (auto st = check(v, what); !st)
      return st;
  if (c.d_model % c.heads != 0)
    return {errc::invalid_config, "model heads (" + std::to_string(c.heads)
                                    + ") must divide d_model (" + std::to_string(c.d_model) + ")"};
  // Bound the count before computing it exactly, so that it cannot overflow.
  if (c.layers > max_parameters / (c.d_model * std::max(c.d_model, c.ff_dim))
      || parameter_count(c) > max_parameters)
    return {errc::invalid_config, "model has more than 2^28 parameters"};
  return ok();
}

std::vector<std::string> preset_names() {
  return {"base", "seed"};
}

std::string_view default_preset() {
  return "base";
}

result<model_config> preset(std::string_view name) {
  if (name == "seed")
    return model_config{"seed", 32, 64, 4, 2, 128};
  if (name == "base")
    return model_config{"base", 32, 256, 8, 4, 1024};
  return {errc::invalid_config,
          "unknown model preset '" + std::string{name} + "' (known: base, seed)"};
}

// -- weights ------------------------------------------------------------------------

namespace {

using mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using rowvec = Eigen::Matrix<float, 1, Eigen::Dynamic>;

struct layer_weights {
  mat wqkv; // [d x 3d]: wq | wk | wv
  rowvec bqkv;
  mat wo;
  rowvec bo;
  rowvec ln1_gamma;
  rowvec ln1_beta;
  mat w1;
  rowvec b1;
  mat w2;
  rowvec b2;
  rowvec ln2_gamma;
  rowvec ln2_beta;
};

/// Visits every tensor in file order as (name, rows, cols, pointer to the
/// first float, column stride within the storage). wq, wk and wv live side by
/// side in wqkv, so they are visited as column blocks of it.
template <class Weights, class F>
void for_each_tensor(Weights& w, std::size_t d, F&& f) {
  f("w_in", w.w_in.rows(), w.w_in.cols(), w.w_in.data(), w.w_in.cols());
  f("b_in", 1, w.b_in.cols(), w.b_in.data(), w.b_in.cols());
  for (auto& l : w.layers) {
    auto ld = l.wqkv.cols();
    f("wq", d, d, l.wqkv.data(), ld);
    f("bq", 1, d, l.bqkv.data(), ld);
    f("wk", d, d, l.wqkv.data() + d, ld);
    f("bk", 1, d, l.bqkv.data() + d, ld);
    f("wv", d, d, l.wqkv.data() + 2 * d, ld);
    f("bv", 1, d, l.bqkv.data() + 2 * d, ld);
    f("wo", d, d, l.wo.data(), l.wo.cols());
    f("bo", 1, d, l.bo.data(), d);
    f("ln1_gamma", 1, d, l.ln1_gamma.data(), d);
    f("ln1_beta", 1, d, l.ln1_beta.data(), d);
    f("w1", l.w1.rows(), l.w1.cols(), l.w1.data(), l.w1.cols());
    f("b1", 1, l.b1.cols(), l.b1.data(), l.b1.cols());
    f("w2", l.w2.rows(), l.w2.cols(), l.w2.data(), l.w2.cols());
    f("b2", 1, d, l.b2.data(), d);
    f("ln2_gamma", 1, d, l.ln2_gamma.data(), d);
    f("ln2_beta", 1, d, l.ln2_beta.data(), d);
  }
  f("w_head", d, 1, w.w_head.data(), 1);
  f("b_head", 1, 1, &w.b_head, 1);
}

/// Kind of initialization a tensor gets, from its name.
enum class init_kind { weight, bias, gamma };

init_kind kind_of(std::string_view name) {
  if (name.size() > 6 && name.substr(name.size() - 6) == "_gamma")
    return init_kind::gamma;
  if (name[0] == 'w')
    return init_kind::weight;
  return init_kind::bias; // biases and LayerNorm betas
}

std::string hex8(std::uint64_t x) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string s(8, '0');
  auto v = static_cast<std::uint32_t>(x >> 32);
  for (int i = 7; i >= 0; --i, v >>= 4)
    s[static_cast<std::size_t>(i)] = digits[v & 0xf];
  return s;
}

} // namespace

struct model::impl {
  model_config cfg;
  std::string declared_version;
  std::string version;
  std::uint64_t fingerprint = 0;
  float attn_scale = 1.0f;

  mat w_in;
  rowvec b_in;
  std::vector<layer_weights> layers;
  rowvec w_head; // stored as a row, used as a column
  float b_head = 0.0f;

  explicit impl(const model_config& c)
    : cfg(c) {
    auto d = static_cast<Eigen::Index>(c.d_model);
    auto f = static_cast<Eigen::Index>(c.ff_dim);
    w_in.resize(static_cast<Eigen::Index>(c.input_dim), d);
    b_in.resize(d);
    layers.resize(c.layers);
    for (auto& l : layers) {
      l.wqkv.resize(d, 3 * d);
      l.bqkv.resize(3 * d);
      l.wo.resize(d, d);
      l.bo.resize(d);
      l.ln1_gamma.resize(d);
      l.ln1_beta.resize(d);
      l.w1.resize(d, f);
      l.b1.resize(f);
      l.w2.resize(f, d);
      l.b2.resize(d);
      l.ln2_gamma.resize(d);
      l.ln2_beta.resize(d);
    }
    w_head.resize(d);
    const std::size_t head_dim = c.d_model / c.heads; // exact: validate() checks it
    attn_scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  }

  /// Computes fingerprint and version once the weights are final.
  void seal(std::string declared) {
    fnv1a64 h;
    h.add_u64(cfg.input_dim);
    h.add_u64(cfg.d_model);
    h.add_u64(cfg.heads);
    h.add_u64(cfg.layers);
    h.add_u64(cfg.ff_dim);
    for_each_tensor(
      *this, cfg.d_model,
      [&](const char*, std::size_t rows, std::size_t cols, const float* p, std::size_t ld) {
        for (std::size_t r = 0; r < rows; ++r)
          for (std::size_t c = 0; c < cols; ++c) {
            std::uint32_t bits;
            std::memcpy(&bits, p + r * ld + c, sizeof bits);
            h.add_u32(bits);
          }
      });
    fingerprint = h.value();
    declared_version = std::move(declared);
    version = declared_version + "-" + hex8(fingerprint);
  }
};

result<model> model::from_seed(const model_config& cfg, std::uint64_t seed) {
  if (auto st = validate(cfg); !st)
    return st.error();
  auto p = std::make_shared<impl>(cfg);
  splitmix64 rng{seed};
  for_each_tensor(
    *p, cfg.d_model,
    [&](const char* name, std::size_t rows, std::size_t cols, float* data, std::size_t ld) {
      auto kind = kind_of(name);
      double a = 0.1;
      if (kind == init_kind::weight)
        a = std::sqrt(6.0 / static_cast<double>(rows + cols));
      for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < cols; ++c) {
          double u = (2.0 * rng.uniform() - 1.0) * a;
          data[r * ld + c] = static_cast<float>(kind == init_kind::gamma ? 1.0 + u : u);
        }
    });
  p->seal("s" + std::to_string(seed));
  return model{std::move(p)};
}

// -- weights file ---------------------------------------------------------------------

namespace {

constexpr char file_magic[4] = {'S', 'I', 'L', 'W'};
constexpr std::uint32_t file_format_version = 1;
constexpr std::size_t max_label = 256;

void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i)
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

/// Reads little-endian fields from a byte buffer, remembering truncation.
class reader {
public:
  explicit reader(const std::string& buf)
    : buf_(buf) {
    // nop
  }

  bool u32(std::uint32_t& v) {
    if (remaining() < 4)
      return false;
    v = 0;
    for (int i = 0; i < 4; ++i)
      v |= static_cast<std::uint32_t>(static_cast<unsigned char>(buf_[pos_++])) << (8 * i);
    return true;
  }

  bool u64(std::uint64_t& v) {
    if (remaining() < 8)
      return false;
    v = 0;
    for (int i = 0; i < 8; ++i)
      v |= static_cast<std::uint64_t>(static_cast<unsigned char>(buf_[pos_++])) << (8 * i);
    return true;
  }

  bool bytes(std::string& out, std::size_t n) {
    if (remaining() < n)
      return false;
    out.assign(buf_, pos_, n);
    pos_ += n;
    return true;
  }

  std::size_t remaining() const noexcept {
    return buf_.size() - pos_;
  }

private:
  const std::string& buf_;
  std::size_t pos_ = 0;
};

bool printable_label(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return c >= 0x21 && c <= 0x7e; // printable ASCII without space
  });
}

} // namespace

status model::save(const std::string& path) const {
  const auto& p = *impl_;
  std::string out;
  out.reserve(64 + parameter_count(p.cfg) * 4);
  out.append(file_magic, sizeof file_magic);
  put_u32(out, file_format_version);
  for (auto v : {p.cfg.input_dim, p.cfg.d_model, p.cfg.heads, p.cfg.layers, p.cfg.ff_dim})
    put_u32(out, static_cast<std::uint32_t>(v));
  put_u32(out, static_cast<std::uint32_t>(p.cfg.name.size()));
  out += p.cfg.name;
  put_u32(out, static_cast<std::uint32_t>(p.declared_version.size()));
  out += p.declared_version;
  put_u64(out, parameter_count(p.cfg));
  for_each_tensor(
    p, p.cfg.d_model,
    [&](const char*, std::size_t rows, std::size_t cols, const float* data, std::size_t ld) {
      for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < cols; ++c) {
          std::uint32_t bits;
          std::memcpy(&bits, data + r * ld + c, sizeof bits);
          put_u32(out, bits);
        }
    });
  std::ofstream f{path, std::ios::binary | std::ios::trunc};
  if (!f)
    return {errc::io_error, "cannot create weights file '" + path + "': " + std::strerror(errno)};
  f.write(out.data(), static_cast<std::streamsize>(out.size()));
  f.close();
  if (!f)
    return {errc::io_error, "cannot write weights file '" + path + "'"};
  return ok();
}

result<model> model::load(const std::string& path) {
  std::ifstream f{path, std::ios::binary};
  if (!f)
    return {errc::io_error, "cannot open weights file '" + path + "': " + std::strerror(errno)};
  std::string buf{std::istreambuf_iterator<char>{f}, std::istreambuf_iterator<char>{}};
  if (f.bad())
    return {errc::io_error, "cannot read weights file '" + path + "'"};
  auto bad = [&](const std::string& what) -> result<model> {
    return {errc::bad_format, "weights file '" + path + "': " + what};
  };
  reader rd{buf};
  std::string magic;
  if (!rd.bytes(magic, 4) || magic != std::string(file_magic, 4))
    return bad("not a SIL weights file (bad magic)");
  std::uint32_t format = 0;
  if (!rd.u32(format))
    return bad("truncated header");
  if (format != file_format_version)
    return bad("unsupported format version " + std::to_string(format) + " (supported: 1)");
  std::uint32_t dims[5];
  for (auto& v : dims)
    if (!rd.u32(v))
      return bad("truncated header");
  std::uint32_t len = 0;
  model_config cfg;
  std::string version;
  if (!rd.u32(len) || len > max_label || !rd.bytes(cfg.name, len) || !printable_label(cfg.name))
    return bad("invalid model name field");
  if (!rd.u32(len) || len > max_label || !rd.bytes(version, len) || !printable_label(version))
    return bad("invalid model version field");
  cfg.input_dim = dims[0];
  cfg.d_model = dims[1];
  cfg.heads = dims[2];
  cfg.layers = dims[3];
  cfg.ff_dim = dims[4];
  if (auto st = validate(cfg); !st)
    return {errc::shape_mismatch, "weights file '" + path + "': " + st.error().message};
  std::uint64_t count = 0;
  if (!rd.u64(count))
    return bad("truncated header");
  if (count != parameter_count(cfg))
    return {errc::shape_mismatch, "weights file '" + path + "': declares " + std::to_string(count)
                                    + " floats, its shape needs "
                                    + std::to_string(parameter_count(cfg))};
  if (rd.remaining() != count * 4)
    return bad("expected " + std::to_string(count * 4) + " bytes of weights, found "
               + std::to_string(rd.remaining()) + " (truncated or trailing data)");
  auto p = std::make_shared<impl>(cfg);
  std::string problem;
  for_each_tensor(
    *p, cfg.d_model,
    [&](const char* name, std::size_t rows, std::size_t cols, float* data, std::size_t ld) {
      for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < cols; ++c) {
          std::uint32_t bits = 0;
          rd.u32(bits);
          float v;
          std::memcpy(&v, &bits, sizeof v);
          if (!std::isfinite(v) && problem.empty())
            problem = std::string{"tensor "} + name + " has a non-finite value at ["
                      + std::to_string(r) + "," + std::to_string(c) + "]";
          data[r * ld + c] = v;
        }
    });
  if (!problem.empty())
    return {errc::non_finite, "weights file '" + path + "': " + problem};
  p->seal(std::move(version));
  return model{std::move(p)};
}

result<model> model::load(const std::string& path, const model_config& expected) {
  auto m = load(path);
  if (!m)
    return m;
  const auto& got = m->config();
  if (!(got == expected)) {
    auto shape = [](const model_config& c) {
      return "D=" + std::to_string(c.input_dim) + " d_model=" + std::to_string(c.d_model)
             + " heads=" + std::to_string(c.heads) + " layers=" + std::to_string(c.layers)
             + " ff=" + std::to_string(c.ff_dim);
    };
    return {errc::shape_mismatch, "weights file '" + path + "' has shape " + shape(got)
                                    + ", expected " + shape(expected) + " ('" + expected.name
                                    + "')"};
  }
  return m;
}

// -- accessors -------------------------------------------------------------------------

const model_config& model::config() const noexcept {
  return impl_->cfg;
}

const std::string& model::name() const noexcept {
  return impl_->cfg.name;
}

const std::string& model::version() const noexcept {
  return impl_->version;
}

const std::string& model::declared_version() const noexcept {
  return impl_->declared_version;
}

std::uint64_t model::fingerprint() const noexcept {
  return impl_->fingerprint;
}

double model::forward_flops(std::size_t rows) const noexcept {
  const auto& c = impl_->cfg;
  auto t = static_cast<double>(rows);
  auto d = static_cast<double>(c.d_model);
  auto f = static_cast<double>(c.ff_dim);
  double proj = 2.0 * t * static_cast<double>(c.input_dim) * d;
  double layer = 2.0 * t * d * 3.0 * d    // q, k, v
                 + 2.0 * 2.0 * t * t * d  // scores and weighted sum
                 + 2.0 * t * d * d        // output projection
                 + 2.0 * 2.0 * t * d * f; // feed-forward
  return proj + static_cast<double>(c.layers) * layer + 2.0 * d;
}

// -- forward pass ----------------------------------------------------------------------

namespace {

/// LayerNorm over each row (population variance, eps 1e-5), in place.
void layer_norm(mat& h, const rowvec& gamma, const rowvec& beta) {
  const float inv_n = 1.0f / static_cast<float>(h.cols());
  for (Eigen::Index r = 0; r < h.rows(); ++r) {
    auto row = h.row(r);
    float mean = row.sum() * inv_n;
    row.array() -= mean;
    float var = row.squaredNorm() * inv_n;
    float inv_std = 1.0f / std::sqrt(var + 1e-5f);
    row = (row.array() * inv_std * gamma.array() + beta.array()).matrix();
  }
}

/// Softmax over each row, in place, with the usual max subtraction.
void softmax_rows(mat& s) {
  for (Eigen::Index r = 0; r < s.rows(); ++r) {
    auto row = s.row(r);
    row.array() = (row.array() - row.maxCoeff()).exp();
    row /= row.sum();
  }
}

} // namespace

result<embedding> model::encode(input_view x) const {
  auto out = encode_batch({x});
  if (!out)
    return out.error();
  return std::move(out->front());
}

result<std::vector<embedding>> model::encode_batch(const std::vector<input_view>& xs) const {
  const auto& p = *impl_;
  const auto dim = static_cast<Eigen::Index>(p.cfg.input_dim);
  const auto d = static_cast<Eigen::Index>(p.cfg.d_model);
  const auto heads = static_cast<Eigen::Index>(p.cfg.heads);
  const auto dk = d / heads;
  Eigen::Index total = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (xs[i].rows == 0 || xs[i].data == nullptr)
      return {errc::invalid_argument, "input " + std::to_string(i) + " has no rows"};
    total += static_cast<Eigen::Index>(xs[i].rows);
  }
  if (xs.empty())
    return std::vector<embedding>{};

  // Stack all rows of all inputs, so that row-wise work is one GEMM.
  mat h(total, d);
  {
    mat x(total, dim);
    Eigen::Index off = 0;
    for (const auto& in : xs) {
      auto t = static_cast<Eigen::Index>(in.rows);
      x.middleRows(off, t) = Eigen::Map<const mat>(in.data, t, dim);
      off += t;
    }
    h.noalias() = x * p.w_in;
    h.rowwise() += p.b_in;
  }

  mat qkv(total, 3 * d);
  mat att(total, d);
  mat tmp(total, d);
  mat ff(total, static_cast<Eigen::Index>(p.cfg.ff_dim));
  mat scores;
  for (const auto& l : p.layers) {
    // Self-attention: fused Q|K|V projection, then per input and per head.
    qkv.noalias() = h * l.wqkv;
    qkv.rowwise() += l.bqkv;
    Eigen::Index off = 0;
    for (const auto& in : xs) {
      auto t = static_cast<Eigen::Index>(in.rows);
      for (Eigen::Index hd = 0; hd < heads; ++hd) {
        auto q = qkv.block(off, hd * dk, t, dk);
        auto k = qkv.block(off, d + hd * dk, t, dk);
        auto v = qkv.block(off, 2 * d + hd * dk, t, dk);
        scores.noalias() = (q * k.transpose()) * p.attn_scale;
        softmax_rows(scores);
        att.block(off, hd * dk, t, dk).noalias() = scores * v;
      }
      off += t;
    }
    // Output projection, residual, LayerNorm.
    tmp.noalias() = att * l.wo;
    tmp.rowwise() += l.bo;
    h += tmp;
    layer_norm(h, l.ln1_gamma, l.ln1_beta);
    // Feed-forward block (ReLU), residual, LayerNorm.
    ff.noalias() = h * l.w1;
    ff.rowwise() += l.b1;
    ff = ff.cwiseMax(0.0f);
    tmp.noalias() = ff * l.w2;
    tmp.rowwise() += l.b2;
    h += tmp;
    layer_norm(h, l.ln2_gamma, l.ln2_beta);
  }

  // Mean pooling over each input's rows.
  // Reduce into an aligned temporary: with AVX-512, Eigen's vectorization
  // depends on the destination's alignment, and the embedding block's float
  // array is only 8-byte aligned. Reducing in place would make results vary
  // in the last bit with the heap address.
  std::vector<embedding> out;
  out.reserve(xs.size());
  rowvec pooled(d);
  Eigen::Index off = 0;
  for (const auto& in : xs) {
    auto t = static_cast<Eigen::Index>(in.rows);
    pooled.noalias() = h.middleRows(off, t).colwise().mean();
    out.push_back(embedding::make(static_cast<std::size_t>(d), [&](float* dst) {
      std::copy(pooled.data(), pooled.data() + d, dst);
    }));
    off += t;
  }
  return out;
}

float model::head(const embedding& e) const noexcept {
  // A fixed summation order in double precision, not Eigen's dot(): its
  // vectorized reduction depends on the embedding's address, and a cached
  // and a fresh copy of one embedding must give bit-identical scores.
  const auto& p = *impl_;
  const float* x = e.data();
  const float* w = p.w_head.data();
  const std::size_t d = p.cfg.d_model;
  double acc[4] = {0.0, 0.0, 0.0, 0.0};
  std::size_t i = 0;
  for (; i + 4 <= d; i += 4)
    for (std::size_t j = 0; j < 4; ++j)
      acc[j] += static_cast<double>(x[i + j]) * static_cast<double>(w[i + j]);
  for (; i < d; ++i)
    acc[0] += static_cast<double>(x[i]) * static_cast<double>(w[i]);
  double z = (acc[0] + acc[1]) + (acc[2] + acc[3]) + static_cast<double>(p.b_head);
  // Numerically stable logistic function.
  double s = z >= 0 ? 1.0 / (1.0 + std::exp(-z)) : std::exp(z) / (1.0 + std::exp(z));
  return static_cast<float>(s);
}

} // namespace sil
