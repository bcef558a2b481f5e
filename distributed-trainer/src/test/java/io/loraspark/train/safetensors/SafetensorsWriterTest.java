package io.loraspark.train.safetensors;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.loraspark.train.safetensors.SafetensorsWriter.Tensor;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsWriterTest {

  @TempDir Path dir;

  private static Map<String, Tensor> sample() {
    Map<String, Tensor> t = new LinkedHashMap<>();
    t.put("z.weight", Tensor.f32(new long[] {2, 3}, new float[] {1, 2, 3, 4, 5, 6}));
    t.put("a.bias", new Tensor(new long[] {3}, new float[] {0.5f, -1f, 7f}, DType.BF16));
    return t;
  }

  @Test
  void sameInputGivesIdenticalBytes() throws IOException {
    Map<String, String> m1 = new HashMap<>(Map.of("format", "pt", "b", "2", "a", "1"));
    Map<String, String> m2 = new LinkedHashMap<>();
    m2.put("a", "1");
    m2.put("format", "pt");
    m2.put("b", "2");
    SafetensorsWriter.write(dir.resolve("one.safetensors"), sample(), m1);
    SafetensorsWriter.write(dir.resolve("two.safetensors"), sample(), m2);
    assertThat(Files.readAllBytes(dir.resolve("two.safetensors")))
        .as("bytes of two writes of the same tensors and metadata")
        .isEqualTo(Files.readAllBytes(dir.resolve("one.safetensors")));
  }

  @Test
  void headerIsExactJsonInInsertionOrderPaddedWithSpacesToAMultipleOfEight() throws IOException {
    Path file = dir.resolve("h.safetensors");
    SafetensorsWriter.write(file, sample(), Map.of("format", "pt"));
    ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
    int n = (int) b.getLong(0);
    String header = new String(b.array(), 8, n, StandardCharsets.UTF_8);
    String json =
        "{\"__metadata__\":{\"format\":\"pt\"},"
            + "\"z.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
            + "\"a.bias\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[24,30]}}";
    assertThat(n % 8).as("header length %d must be a multiple of 8", n).isZero();
    assertThat(header.strip()).as("header JSON").isEqualTo(json);
    assertThat(header.substring(json.length())).as("padding").matches(" {0,7}");
    assertThat(b.capacity()).as("file size = 8 + header + 30 data bytes").isEqualTo(8 + n + 30);
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      assertThat(f.names()).containsExactly("z.weight", "a.bias");
    }
  }

  @Test
  void writeReplacesTheTargetAndLeavesNoTempFile() throws IOException {
    Path file = dir.resolve("model.safetensors");
    Files.writeString(file, "old contents");
    SafetensorsWriter.write(file, sample(), null);
    try (Stream<Path> files = Files.list(dir)) {
      assertThat(files.toList()).as("directory after the write").containsExactly(file);
    }
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      assertThat(f.readFloats("z.weight")).as("new contents").containsExactly(1, 2, 3, 4, 5, 6);
      assertThat(f.metadata()).as("no metadata given, none written").isEmpty();
    }
  }

  @Test
  void failedRenameLeavesNoTempFileAndNamesTheTarget() throws IOException {
    Path target = dir.resolve("taken");
    Files.createDirectories(target.resolve("child")); // a non-empty directory cannot be replaced
    assertThatThrownBy(() -> SafetensorsWriter.write(target, sample(), null))
        .isInstanceOf(UncheckedIOException.class)
        .hasMessageContaining(target.toString());
    try (Stream<Path> files = Files.list(dir)) {
      assertThat(files.toList()).as("directory after the failed write").containsExactly(target);
    }
  }

  @Test
  void invalidTensorsAndNamesAreRejectedBeforeAnythingIsWritten() {
    assertThatThrownBy(() -> Tensor.f32(new long[] {2, 2}, new float[3]))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("has 4 elements but data has 3");
    assertThatThrownBy(() -> Tensor.f32(new long[] {-1}, new float[0]))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("negative");
    Path file = dir.resolve("x.safetensors");
    Map<String, Tensor> reserved = Map.of("__metadata__", Tensor.f32(new long[] {1}, new float[1]));
    assertThatThrownBy(() -> SafetensorsWriter.write(file, reserved, null))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining(file.toString())
        .hasMessageContaining("__metadata__");
    assertThat(dir.toFile().list()).as("nothing written").isEmpty();
  }

  @Test
  void emptyCheckpointRoundTrips() {
    Path file = dir.resolve("empty.safetensors");
    SafetensorsWriter.write(file, Map.of(), Map.of("format", "pt"));
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      assertThat(f.names()).isEqualTo(List.of());
      assertThat(f.metadata()).containsEntry("format", "pt");
    }
  }
}
