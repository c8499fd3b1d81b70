// 3-D grid sample (trilinear, zeros padding) shared by the CUDA kernel and its host check.
//
// One output voxel: read its (x, y, z) grid point, find the 8 surrounding input voxels and their
// trilinear weights once, then blend every channel. Layout NCDHW contiguous for input and output,
// grid [N, Do, Ho, Wo, 3] contiguous. Accumulation in float whatever the storage type.
#pragma once

#include <cmath>
#include <cstdint>
#include <cuda_fp16.h>

#include "grid_sample3d.h"

#if defined(__CUDACC__)
#define TALKRT_HD __host__ __device__ __forceinline__
#else
#define TALKRT_HD inline
#endif

namespace talkrt {

TALKRT_HD float toFloat(float v) { return v; }
TALKRT_HD float toFloat(__half v) { return __half2float(v); }
TALKRT_HD void fromFloat(float v, float* dst) { *dst = v; }
TALKRT_HD void fromFloat(float v, __half* dst) { *dst = __float2half_rn(v); }

// [-1, 1] -> voxel index space
TALKRT_HD float unnormalize(float g, int32_t size, int32_t alignCorners)
{
    return alignCorners ? (g + 1.f) * 0.5f * float(size - 1) : ((g + 1.f) * float(size) - 1.f) * 0.5f;
}

// Sample all channels of output voxel `voxel` (flat over n, dOut, hOut, wOut).
template <typename T, typename G>
TALKRT_HD void sampleVoxel(T const* input, G const* grid, T* output, GridSample3DShape s, int64_t voxel)
{
    int64_t const perItem = int64_t(s.dOut) * s.hOut * s.wOut;
    int64_t const item = voxel / perItem;
    int64_t const local = voxel - item * perItem;
    float const ix = unnormalize(toFloat(grid[voxel * 3 + 0]), s.w, s.alignCorners);
    float const iy = unnormalize(toFloat(grid[voxel * 3 + 1]), s.h, s.alignCorners);
    float const iz = unnormalize(toFloat(grid[voxel * 3 + 2]), s.d, s.alignCorners);
    float const x0f = floorf(ix), y0f = floorf(iy), z0f = floorf(iz);
    float const fx = ix - x0f, fy = iy - y0f, fz = iz - z0f;
    int32_t const x0 = int32_t(x0f), y0 = int32_t(y0f), z0 = int32_t(z0f);

    int64_t offset[8];
    float weight[8];
    for (int corner = 0; corner < 8; ++corner) {
        int32_t const dx = corner & 1, dy = (corner >> 1) & 1, dz = corner >> 2;
        int32_t const x = x0 + dx, y = y0 + dy, z = z0 + dz;
        bool const inside = x >= 0 && x < s.w && y >= 0 && y < s.h && z >= 0 && z < s.d;
        weight[corner] = inside ? (dx ? fx : 1.f - fx) * (dy ? fy : 1.f - fy) * (dz ? fz : 1.f - fz) : 0.f;
        offset[corner] = inside ? (int64_t(z) * s.h + y) * s.w + x : 0;  // out-of-range reads nothing
    }
    int64_t const volume = int64_t(s.d) * s.h * s.w;
    T const* src = input + item * s.c * volume;
    T* dst = output + item * s.c * perItem + local;
    for (int32_t ch = 0; ch < s.c; ++ch) {
        float acc = 0.f;
        for (int corner = 0; corner < 8; ++corner) {
            if (weight[corner] != 0.f) {
                acc += weight[corner] * toFloat(src[offset[corner]]);
            }
        }
        fromFloat(acc, dst);
        src += volume;
        dst += perItem;
    }
}

} // namespace talkrt
