// QSGD encode/decode, fp16/bf16 casts and the sign family (pack, fused EF encode, decode of all
// workers' payloads at once).
#include <cmath>
#include <memory>
#include <vector>

#include "../core/adacomp.h"
#include "../core/cast.h"
#include "../core/codec.h"
#include "../core/optim.h"
#include "../core/qsgd.h"
#include "ops.h"

namespace gradcomp_napi {
namespace {

// qsgdEncode(x, levels, bucket, norm, seedLo, seedHi, step, tensorId, payload, async)
GC_JS(JS_qsgdEncode) {
  GC_SPAN(float, 0, x);
  GC_U64(1, levels, GC_QSGD_MAX_LEVELS);
  GC_U64(2, bucket, 0xffffffffULL);
  GC_U64(3, norm, 1);
  GC_U64(4, seed_lo, 0xffffffffULL);
  GC_U64(5, seed_hi, 0xffffffffULL);
  GC_U64(6, step, 0xffffffffULL);
  GC_U64(7, tensor_id, 0xffffffffULL);
  GC_SPAN(uint8_t, 8, payload);
  GC_CHECK(levels >= 1 && bucket >= 1, "qsgdEncode parameter out of range");
  gc_qsgd_desc d{x.data, x.len, static_cast<uint32_t>(levels), static_cast<uint32_t>(bucket), static_cast<gc_qsgd_norm>(norm),
                 seed_lo | (seed_hi << 32), static_cast<uint32_t>(step), static_cast<uint32_t>(tensor_id), payload.data, payload.len};
  return gcnapi::Dispatch(a, gcnapi::Bool(a, 9), "qsgdEncode", [d] { return gradcomp::qsgd_encode(d); }, {a.argv[0], a.argv[8]});
}

// qsgdDecode(payload, out, accumulate, async)
GC_JS(JS_qsgdDecode) {
  GC_SPAN(uint8_t, 0, payload);
  GC_SPAN(float, 1, out);
  const bool acc = gcnapi::Bool(a, 2);
  return gcnapi::Dispatch(a, gcnapi::Bool(a, 3), "qsgdDecode",
                          [payload, out, acc] { return gradcomp::qsgd_decode(payload.data, payload.len, out.data, out.len, acc); },
                          {a.argv[0], a.argv[1]});
}

// qsgdDecodeSum(data, spans Float64Array [offset, length] per payload, out, scale, async): out =
// scale * the sum of the payloads at data[offset, offset + length), in order.
// The (offset, length) pairs of `spans` as payload pointers into data; false (an error thrown) when one runs past it.
bool Spans(gcnapi::Args& a, const gcnapi::Span<uint8_t>& data, const gcnapi::Span<double>& spans, const char* op,
           std::shared_ptr<std::vector<const uint8_t*>>* ptrs, std::shared_ptr<std::vector<uint64_t>>* lens) {
  if (!(spans.len >= 2 && spans.len % 2 == 0 && spans.len <= 2 * 4096)) {
    gcnapi::ThrowRange(a.env, std::string("gradcomp native: ") + op + " needs 1 to 4096 (offset, length) pairs");
    return false;
  }
  const uint32_t count = static_cast<uint32_t>(spans.len / 2);
  *ptrs = std::make_shared<std::vector<const uint8_t*>>(count);
  *lens = std::make_shared<std::vector<uint64_t>>(count);
  for (uint32_t j = 0; j < count; ++j) {
    const double o = spans.data[2 * j], l = spans.data[2 * j + 1];
    if (!(o >= 0 && l >= 0 && o == std::floor(o) && l == std::floor(l) && o + l <= static_cast<double>(data.len))) {
      gcnapi::ThrowRange(a.env, std::string("gradcomp native: ") + op + ": a payload span runs past the data");
      return false;
    }
    (**ptrs)[j] = data.data + static_cast<uint64_t>(o);
    (**lens)[j] = static_cast<uint64_t>(l);
  }
  return true;
}

GC_JS(JS_qsgdDecodeSum) {
  GC_SPAN(uint8_t, 0, data);
  GC_SPAN(double, 1, spans);
  GC_SPAN(float, 2, out);
  GC_F64(3, scale);
  std::shared_ptr<std::vector<const uint8_t*>> ptrs;
  std::shared_ptr<std::vector<uint64_t>> lens;
  if (!Spans(a, data, spans, "qsgdDecodeSum", &ptrs, &lens)) return nullptr;
  const uint32_t count = static_cast<uint32_t>(ptrs->size());
  const float sc = static_cast<float>(scale);
  return gcnapi::Dispatch(a, gcnapi::Bool(a, 4), "qsgdDecodeSum",
                          [ptrs, lens, count, out, sc] { return gradcomp::qsgd_decode_sum(ptrs->data(), lens->data(), count, out.data, out.len, sc); },
                          {a.argv[0], a.argv[2]});
}

// qsgdDecodeSgd(data, spans, w, buf | null, lr, momentum, dampening, weightDecay, gradScale, nesterov, first, async):
// the SGD update with g = the sum of the payloads, decoded a tile at a time (qsgd.h)
GC_JS(JS_qsgdDecodeSgd) {
  GC_SPAN(uint8_t, 0, data);
  GC_SPAN(double, 1, spans);
  GC_SPAN(float, 2, w);
  GC_SPAN(float, 3, buf, true);
  gradcomp::SgdParams p;
  if (!SgdArgs(a, 4, &p)) return nullptr;
  GC_CHECK(p.momentum == 0.0f || (buf.present && buf.len == w.len), "qsgdDecodeSgd lengths disagree");
  std::shared_ptr<std::vector<const uint8_t*>> ptrs;
  std::shared_ptr<std::vector<uint64_t>> lens;
  if (!Spans(a, data, spans, "qsgdDecodeSgd", &ptrs, &lens)) return nullptr;
  float* bp = buf.present ? buf.data : nullptr;
  return gcnapi::Dispatch(a, gcnapi::Bool(a, 11), "qsgdDecodeSgd", [ptrs, lens, w, bp, p] {
    return gradcomp::qsgd_decode_sgd(ptrs->data(), lens->data(), static_cast<uint32_t>(ptrs->size()), w.len, w.data, bp, p);
  }, {a.argv[0], a.argv[2], a.argv[3]});
}

// qsgdPayloadBytes(n, levels, bucket) -> number
GC_JS(JS_qsgdPayloadBytes) {
  GC_U64(0, n, 0xffffffffULL);
  GC_U64(1, levels, GC_QSGD_MAX_LEVELS);
  GC_U64(2, bucket, 0xffffffffULL);
  GC_CHECK(levels >= 1 && bucket >= 1, "qsgdPayloadBytes parameter out of range");
  return gcnapi::Number(a.env, static_cast<double>(gc_qsgd_payload_bytes(n, static_cast<uint32_t>(levels), static_cast<uint32_t>(bucket))));
}

// halfPack(x, out16, kind 0 fp16 | 1 bf16 | 2 fp16 saturating) / halfUnpackAdd(h16, out, kind 0 | 1)
GC_JS(JS_halfPack) {
  GC_SPAN(float, 0, x);
  GC_SPAN(uint16_t, 1, h);
  GC_U64(2, kind, 2);
  GC_CHECK(h.len == x.len, "halfPack sizes disagree");
  gcnapi::ThrowStatus(a.env, gradcomp::half_pack(x.data, x.len, h.data, static_cast<int>(kind)), "halfPack");
  return nullptr;
}
GC_JS(JS_halfUnpackAdd) {
  GC_SPAN(uint16_t, 0, h);
  GC_SPAN(float, 1, out);
  GC_U64(2, kind, 1);
  GC_CHECK(h.len == out.len, "halfUnpackAdd sizes disagree");
  gcnapi::ThrowStatus(a.env, gradcomp::half_unpack_add(h.data, h.len, out.data, static_cast<int>(kind)), "halfUnpackAdd");
  return nullptr;
}

// signPack(x, bits) -> sum |x|;  signUnpackAdd(bits, out, scale)
GC_JS(JS_signPack) {
  GC_SPAN(float, 0, x);
  GC_SPAN(uint8_t, 1, bits);
  GC_CHECK(bits.len >= (x.len + 7) / 8, "signPack bits too short");
  double l1 = 0.0;
  gcnapi::ThrowStatus(a.env, gradcomp::sign_pack(x.data, x.len, bits.data, &l1), "signPack");
  return gcnapi::Number(a.env, l1);
}
GC_JS(JS_signUnpackAdd) {
  GC_SPAN(uint8_t, 0, bits);
  GC_SPAN(float, 1, out);
  GC_F64(2, scale);
  GC_CHECK(bits.len >= (out.len + 7) / 8, "signUnpackAdd bits too short");
  gcnapi::ThrowStatus(a.env, gradcomp::sign_unpack_add(bits.data, out.len, static_cast<float>(scale), out.data), "signUnpackAdd");
  return nullptr;
}

// efsignEncode(grad | null, e, bits, async) -> scale (or a Promise of it)
GC_JS(JS_efsignEncode) {
  GC_SPAN(float, 0, grad, true);
  GC_SPAN(float, 1, e);
  GC_SPAN(uint8_t, 2, bits);
  GC_CHECK(!(grad.present && grad.len != e.len) && bits.len >= (e.len + 7) / 8, "efsignEncode sizes disagree");
  const float* g = grad.present ? grad.data : nullptr;
  if (!gcnapi::Bool(a, 3)) {
    float scale = 0.0f;
    gcnapi::ThrowStatus(a.env, gradcomp::efsign_encode(g, e.data, e.len, bits.data, &scale), "efsignEncode");
    return gcnapi::Number(a.env, scale);
  }
  auto scale = std::make_shared<float>(0.0f);
  return gcnapi::StartAsync(a.env, "efsignEncode", [g, e, bits, scale](std::string*) {
    return gradcomp::efsign_encode(g, e.data, e.len, bits.data, scale.get());
  }, {a.argv[0], a.argv[1], a.argv[2]}, [scale](napi_env env) { return gcnapi::Number(env, *scale); });
}

// signDecodeAll(data, offsets: Uint32Array (byte offset of each rank's bits in data),
//               scales: Float32Array | null, out, mode 0 average | 1 vote, divisor, async)
GC_JS(JS_signDecodeAll) {
  GC_SPAN(uint8_t, 0, data);
  GC_SPAN(uint32_t, 1, offsets);
  GC_SPAN(float, 2, scales, true);
  GC_SPAN(float, 3, out);
  GC_U64(4, mode, 1);
  GC_F64(5, divisor);
  const uint64_t need = (out.len + 7) / 8;
  GC_CHECK(offsets.len >= 1 && offsets.len <= 1u << 20 && (mode == 1 || (scales.present && scales.len == offsets.len)),
           "signDecodeAll arguments disagree");
  auto ptrs = std::make_shared<std::vector<const uint8_t*>>();
  for (uint64_t r = 0; r < offsets.len; ++r) {
    GC_CHECK(offsets.data[r] <= data.len && data.len - offsets.data[r] >= need, "signDecodeAll: a payload is shorter than n bits");
    ptrs->push_back(data.data + offsets.data[r]);
  }
  const float* sc = scales.present ? scales.data : nullptr;
  const uint32_t ranks = static_cast<uint32_t>(offsets.len);
  const float div = static_cast<float>(divisor);
  return gcnapi::Dispatch(a, gcnapi::Bool(a, 6), "signDecodeAll", [ptrs, sc, ranks, out, mode, div] {
    return gradcomp::sign_decode_all(ptrs->data(), sc, ranks, out.len, out.data, static_cast<int>(mode), div);
  }, {a.argv[0], a.argv[2], a.argv[3]});
}

// efsignEncodeBlocks(grad | null, e, block, bits, scales);  signUnpackAddBlocks(bits, block, scales, out)
GC_JS(JS_efsignEncodeBlocks) {
  GC_SPAN(float, 0, grad, true);
  GC_SPAN(float, 1, e);
  GC_U64(2, block, 0xffffffffULL);
  GC_SPAN(uint8_t, 3, bits);
  GC_SPAN(float, 4, scales);
  GC_CHECK(block >= 8 && block % 8 == 0 && !(grad.present && grad.len != e.len) && bits.len >= (e.len + 7) / 8 && scales.len >= (e.len + block - 1) / block,
           "efsignEncodeBlocks arguments disagree");
  gcnapi::ThrowStatus(a.env, gradcomp::efsign_encode_blocks(grad.present ? grad.data : nullptr, e.data, e.len, block, bits.data, scales.data), "efsignEncodeBlocks");
  return nullptr;
}
GC_JS(JS_signUnpackAddBlocks) {
  GC_SPAN(uint8_t, 0, bits);
  GC_U64(1, block, 0xffffffffULL);
  GC_SPAN(float, 2, scales);
  GC_SPAN(float, 3, out);
  GC_CHECK(block >= 8 && block % 8 == 0 && bits.len >= (out.len + 7) / 8 && scales.len >= (out.len + block - 1) / block, "signUnpackAddBlocks arguments disagree");
  gcnapi::ThrowStatus(a.env, gradcomp::sign_unpack_add_blocks(bits.data, out.len, block, scales.data, out.data), "signUnpackAddBlocks");
  return nullptr;
}

// adacompSelect(dW, R, bin, sel) -> [m, sum |G| over the selected]
GC_JS(JS_adacompSelect) {
  GC_SPAN(float, 0, dw);
  GC_SPAN(float, 1, r);
  GC_U64(2, bin, 0xffffffffULL);
  GC_SPAN(uint32_t, 3, sel);
  GC_CHECK(dw.len == r.len && sel.len >= r.len && bin >= 1 && r.len <= 0xffffffffULL, "adacompSelect arguments disagree");
  uint64_t m = 0;
  double sum = 0.0;
  gcnapi::ThrowStatus(a.env, gradcomp::adacomp_select(dw.data, r.data, r.len, static_cast<uint32_t>(bin), sel.data, &m, &sum), "adacompSelect");
  napi_value arr, v;
  napi_create_array_with_length(a.env, 2, &arr);
  napi_set_element(a.env, arr, 0, v = gcnapi::Number(a.env, static_cast<double>(m)));
  napi_set_element(a.env, arr, 1, v = gcnapi::Number(a.env, sum));
  return arr;
}

// adacompEmit(R, sel, m, scale, idx, signs)
GC_JS(JS_adacompEmit) {
  GC_SPAN(float, 0, r);
  GC_SPAN(uint32_t, 1, sel);
  GC_U64(2, m, 0xffffffffULL);
  GC_F64(3, scale);
  GC_SPAN(uint32_t, 4, idx);
  GC_SPAN(uint8_t, 5, signs);
  GC_CHECK(m <= sel.len && m <= idx.len && signs.len >= (m + 7) / 8, "adacompEmit arguments disagree");
  for (uint64_t t = 0; t < m; t += 1) GC_CHECK(sel.data[t] < r.len, "adacompEmit: a selected index is out of range");
  gcnapi::ThrowStatus(a.env, gradcomp::adacomp_emit(r.data, sel.data, m, static_cast<float>(scale), idx.data, signs.data), "adacompEmit");
  return nullptr;
}

// adacompDecodeAdd(idx, signs, scale, out)
GC_JS(JS_adacompDecodeAdd) {
  GC_SPAN(uint32_t, 0, idx);
  GC_SPAN(uint8_t, 1, signs);
  GC_F64(2, scale);
  GC_SPAN(float, 3, out);
  GC_CHECK(signs.len >= (idx.len + 7) / 8, "adacompDecodeAdd signs too short");
  gcnapi::ThrowStatus(a.env, gradcomp::adacomp_decode_add(idx.data, signs.data, idx.len, static_cast<float>(scale), out.data, out.len), "adacompDecodeAdd");
  return nullptr;
}

}  // namespace

void ExportQuant(napi_env env, napi_value exports) {
  const gcnapi::Fn fns[] = {{"qsgdEncode", JS_qsgdEncode}, {"qsgdDecode", JS_qsgdDecode}, {"qsgdDecodeSum", JS_qsgdDecodeSum}, {"qsgdDecodeSgd", JS_qsgdDecodeSgd}, {"qsgdPayloadBytes", JS_qsgdPayloadBytes},
                            {"halfPack", JS_halfPack}, {"halfUnpackAdd", JS_halfUnpackAdd}, {"signPack", JS_signPack},
                            {"signUnpackAdd", JS_signUnpackAdd}, {"efsignEncode", JS_efsignEncode}, {"signDecodeAll", JS_signDecodeAll},
                            {"adacompSelect", JS_adacompSelect}, {"efsignEncodeBlocks", JS_efsignEncodeBlocks}, {"signUnpackAddBlocks", JS_signUnpackAddBlocks}, {"adacompEmit", JS_adacompEmit}, {"adacompDecodeAdd", JS_adacompDecodeAdd}};
  gcnapi::Export(env, exports, fns, sizeof fns / sizeof fns[0]);
}

}  // namespace gradcomp_napi
