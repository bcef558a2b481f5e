package io.loraspark.train.safetensors;

import static org.assertj.core.api.Assertions.assertThat;

import io.loraspark.train.safetensors.SafetensorsWriter.Tensor;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsRoundTripTest {

  @TempDir Path dir;

  /** Inputs covering signs, zeros, subnormals, infinities, NaN and rounding ties. */
  private static final float[] SPECIALS = {
    1.0f,
    1f / 3f,
    -2.5f,
    65520f,
    0x1.8p-24f,
    1e-8f,
    Float.POSITIVE_INFINITY,
    Float.NaN,
    -0.0f,
    0x1p-25f,
    Float.intBitsToFloat(0x3f808000),
    Float.intBitsToFloat(0x3f818000)
  };

  @Test
  void f32RoundTripIsBitExactIncludingNaNPayloadsAndSubnormals() throws IOException {
    float[] data = {
      0f,
      -0.0f,
      1.5f,
      -3.25e-5f,
      Float.MIN_VALUE,
      Float.MAX_VALUE,
      Float.NEGATIVE_INFINITY,
      Float.intBitsToFloat(0x7fc12345),
      Float.intBitsToFloat(0xffc00001),
      0x1p-140f,
      12345.678f,
      7f
    };
    Path file = dir.resolve("f32.safetensors");
    SafetensorsWriter.write(file, Map.of("w", Tensor.f32(new long[] {3, 4}, data)), Map.of());
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      assertThat(f.info("w").shape()).as("shape of w").containsExactly(3, 4);
      assertThat(f.info("w").dtype()).isEqualTo(DType.F32);
      float[] back = f.readFloats("w");
      for (int i = 0; i < data.length; i++) {
        assertThat(Float.floatToRawIntBits(back[i]))
            .as("F32 element %d must round-trip bit-exactly", i)
            .isEqualTo(Float.floatToRawIntBits(data[i]));
      }
    }
  }

  @Test
  void f16RoundTripGivesTheNearestHalfValues() throws IOException {
    float[] expected = {
      1.0f,
      0.333251953125f,
      -2.5f,
      Float.POSITIVE_INFINITY,
      0x1p-23f,
      0f,
      Float.POSITIVE_INFINITY,
      Float.NaN,
      -0.0f,
      0f,
      1.00390625f,
      1.01171875f
    };
    float[] back = roundTrip(DType.F16);
    for (int i = 0; i < expected.length; i++) {
      assertThat(Float.valueOf(back[i]))
          .as("F16 of %s (element %d)", SPECIALS[i], i)
          .isEqualTo(Float.valueOf(expected[i]));
    }
    assertThat(rawData(dir.resolve("F16.safetensors"), 0, 2))
        .as("1.0 as F16 bytes")
        .containsExactly(0x00, 0x3c);
  }

  @Test
  void bf16RoundTripGivesTheNearestBfloat16Values() throws IOException {
    float[] expected = {
      1.0f,
      0.333984375f,
      -2.5f,
      65536f,
      0x1.8p-24f,
      Float.intBitsToFloat(0x322c0000),
      Float.POSITIVE_INFINITY,
      Float.NaN,
      -0.0f,
      0x1p-25f,
      1.0f,
      Float.intBitsToFloat(0x3f820000)
    };
    float[] back = roundTrip(DType.BF16);
    for (int i = 0; i < expected.length; i++) {
      assertThat(Float.valueOf(back[i]))
          .as("BF16 of %s (element %d)", SPECIALS[i], i)
          .isEqualTo(Float.valueOf(expected[i]));
    }
    assertThat(rawData(dir.resolve("BF16.safetensors"), 0, 2))
        .as("1.0 as BF16 bytes")
        .containsExactly(0x80, 0x3f);
  }

  @Test
  void scalarsEmptyTensorsAndMixedDtypesRoundTrip() throws IOException {
    Map<String, Tensor> tensors = new LinkedHashMap<>();
    tensors.put("scalar", Tensor.f32(new long[] {}, new float[] {42f}));
    tensors.put("empty", new Tensor(new long[] {0, 5}, new float[0], DType.F16));
    tensors.put("half", new Tensor(new long[] {2}, new float[] {0.5f, -4f}, DType.BF16));
    Path file = dir.resolve("mixed.safetensors");
    SafetensorsWriter.write(file, tensors, Map.of("format", "pt"));
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      assertThat(f.names()).as("names in file order").containsExactly("scalar", "empty", "half");
      assertThat(f.metadata()).containsExactly(Map.entry("format", "pt"));
      assertThat(f.readFloats("scalar")).containsExactly(42f);
      assertThat(f.info("scalar").numel()).as("a scalar has one element").isEqualTo(1);
      assertThat(f.readFloats("empty")).isEmpty();
      assertThat(f.readFloats("half")).containsExactly(0.5f, -4f);
    }
  }

  @Test
  void readingInSmallMappedRegionsGivesTheSameValues() throws IOException {
    float[] data = new float[1000];
    for (int i = 0; i < data.length; i++) {
      data[i] = i * 0.25f - 100f;
    }
    Map<String, Tensor> tensors = new LinkedHashMap<>();
    tensors.put("a", Tensor.f32(new long[] {10, 100}, data));
    tensors.put("b", new Tensor(new long[] {1000}, data, DType.F16));
    Path file = dir.resolve("chunks.safetensors");
    SafetensorsWriter.write(file, tensors, null);
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      for (String name : List.of("a", "b")) {
        float[] whole = f.readFloats(name);
        for (long chunk : new long[] {1, 6, 64, 4000}) {
          assertThat(f.readFloats(name, chunk))
              .as("%s read with %d-byte mappings", name, chunk)
              .isEqualTo(whole);
        }
      }
      assertThat(f.readFloats("a")).isEqualTo(data);
    }
  }

  @Test
  void concurrentReadsOfOneOpenFileAgree() throws Exception {
    float[] data = new float[4096];
    for (int i = 0; i < data.length; i++) {
      data[i] = (float) Math.sin(i);
    }
    Path file = dir.resolve("shared.safetensors");
    SafetensorsWriter.write(file, Map.of("x", Tensor.f32(new long[] {64, 64}, data)), null);
    ExecutorService pool = Executors.newFixedThreadPool(4);
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      List<Future<float[]>> reads = new ArrayList<>();
      for (int i = 0; i < 16; i++) {
        reads.add(pool.submit(() -> f.readFloats("x", 1000)));
      }
      for (Future<float[]> r : reads) {
        assertThat(r.get()).as("a concurrent read").isEqualTo(data);
      }
    } finally {
      pool.shutdownNow();
    }
  }

  private float[] roundTrip(DType dtype) {
    Path file = dir.resolve(dtype + ".safetensors");
    SafetensorsWriter.write(
        file, Map.of("t", new Tensor(new long[] {SPECIALS.length}, SPECIALS, dtype)), null);
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      assertThat(f.info("t").dtype()).isEqualTo(dtype);
      assertThat(f.info("t").byteLength()).isEqualTo(2L * SPECIALS.length);
      return f.readFloats("t");
    }
  }

  /** Unsigned data-section bytes [from, from+n), read straight from the file. */
  static int[] rawData(Path file, int from, int n) throws IOException {
    ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
    int start = (int) (8 + b.getLong(0)) + from;
    int[] out = new int[n];
    for (int i = 0; i < n; i++) {
      out[i] = b.get(start + i) & 0xff;
    }
    return out;
  }
}
