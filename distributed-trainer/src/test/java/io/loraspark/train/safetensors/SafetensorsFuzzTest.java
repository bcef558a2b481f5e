package io.loraspark.train.safetensors;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.DictionaryEntries;
import com.code_intelligence.jazzer.junit.FuzzTest;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.io.TempDir;

/**
 * Fuzzes the safetensors reader (header length, strict UTF-8 JSON, tensor table, data section) and
 * the shard index. Contract: for any bytes, opening either succeeds and every tensor reads, or it
 * throws {@link IllegalArgumentException} whose message names the file; anything else (NPE, index
 * out of bounds, OOM, stack overflow, a hang) is a bug. {@code ./mvnw verify} replays the corpus in
 * {@code src/test/resources/.../SafetensorsFuzzTestInputs/}; {@code bench/fuzz.sh} fuzzes.
 */
class SafetensorsFuzzTest {

  @TempDir static Path dir;

  /** The bytes as a whole .safetensors file. */
  @DictionaryEntries({
    "\"dtype\"",
    "\"shape\"",
    "\"data_offsets\"",
    "\"F32\"",
    "\"F16\"",
    "\"BF16\"",
    "\"__metadata__\"",
    "\"weight_map\"",
    "\"metadata\"",
    "9223372036854775807",
    "4294967296",
    "\"shard.safetensors\""
  })
  @FuzzTest(maxDuration = "30s")
  void openFile(byte[] bytes) throws IOException {
    Path file = Files.write(dir.resolve("fuzz.safetensors"), bytes);
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      long covered = 0;
      for (String name : f.names()) {
        TensorInfo t = f.info(name);
        assertThat(f.readFloats(name)).hasSize((int) t.numel());
        covered += t.byteLength();
      }
      assertThat(covered).as("tensors tile the data section").isLessThan(bytes.length);
    } catch (IllegalArgumentException e) {
      assertThat(e.getMessage()).as("names the file").contains(file.toString());
    }
  }

  /**
   * The bytes as model.safetensors.index.json beside one valid shard ({@code shard.safetensors},
   * tensors {@code a} and {@code b}).
   */
  @DictionaryEntries({
    "\"dtype\"",
    "\"shape\"",
    "\"data_offsets\"",
    "\"F32\"",
    "\"F16\"",
    "\"BF16\"",
    "\"__metadata__\"",
    "\"weight_map\"",
    "\"metadata\"",
    "9223372036854775807",
    "4294967296",
    "\"shard.safetensors\""
  })
  @FuzzTest(maxDuration = "30s")
  void openShardIndex(byte[] bytes) throws IOException {
    Path ckpt = Files.createDirectories(dir.resolve("ckpt"));
    Path shard = ckpt.resolve("shard.safetensors");
    if (!Files.exists(shard)) {
      RawSafetensors.write(
          shard,
          "{"
              + RawSafetensors.entry("a", "F32", "[2]", 0, 8)
              + ","
              + RawSafetensors.entry("b", "BF16", "[1,2]", 8, 12)
              + "}",
          12);
    }
    Path index = Files.write(ckpt.resolve(SafetensorsCheckpoint.INDEX_FILE), bytes);
    try (SafetensorsCheckpoint c = SafetensorsCheckpoint.open(ckpt)) {
      for (String name : c.names()) {
        assertThat(c.readFloats(name)).hasSize((int) c.info(name).numel());
      }
    } catch (IllegalArgumentException e) {
      assertThat(e.getMessage()).as("names the index").contains(index.toString());
    }
  }
}
