package io.loraspark.train.safetensors;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.loraspark.train.safetensors.SafetensorsWriter.Tensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.assertj.core.api.AbstractThrowableAssert;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsCheckpointTest {

  private static final String SHARD1 = "model-00001-of-00002.safetensors";
  private static final String SHARD2 = "model-00002-of-00002.safetensors";

  @TempDir Path dir;

  @Test
  void shardedCopyOfTheFixtureGivesTheSameTensors() throws IOException {
    try (SafetensorsFile original = SafetensorsFile.open(SafetensorsFixtureTest.FIXTURE)) {
      List<String> names = original.names();
      Map<String, Tensor> first = new LinkedHashMap<>();
      Map<String, Tensor> second = new LinkedHashMap<>();
      Map<String, String> weightMap = new LinkedHashMap<>();
      for (int i = 0; i < names.size(); i++) {
        String n = names.get(i);
        boolean isFirst = i < names.size() / 2;
        (isFirst ? first : second)
            .put(n, Tensor.f32(original.info(n).shape(), original.readFloats(n)));
        weightMap.put(n, isFirst ? SHARD1 : SHARD2);
      }
      SafetensorsWriter.write(dir.resolve(SHARD1), first, Map.of("format", "pt"));
      SafetensorsWriter.write(dir.resolve(SHARD2), second, Map.of("format", "pt"));
      writeIndex(weightMap);

      try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(dir)) {
        assertThat(ckpt.names()).as("names in weight_map order").isEqualTo(names);
        assertThat(ckpt.metadata())
            .as("index metadata, numbers as text")
            .containsEntry("total_size", "1171200");
        for (String n : names) {
          assertThat(ckpt.contains(n)).as("checkpoint contains %s", n).isTrue();
          assertThat(ckpt.info(n).shape()).as("shape of %s", n).isEqualTo(original.info(n).shape());
          assertThat(ckpt.readFloats(n)).as("values of %s", n).isEqualTo(original.readFloats(n));
        }
        assertThatThrownBy(() -> ckpt.info("nope"))
            .isInstanceOf(IllegalArgumentException.class)
            .hasMessageContaining("no tensor 'nope'");
      }
      try (SafetensorsCheckpoint viaIndex =
          SafetensorsCheckpoint.open(dir.resolve(SafetensorsCheckpoint.INDEX_FILE))) {
        assertThat(viaIndex.names()).as("opening the index path directly").isEqualTo(names);
      }
    }
  }

  @Test
  void indexNamingAMissingShardNamesTheIndexAndTheShard() throws IOException {
    writeShard(SHARD1, "a");
    Path index = writeIndex(Map.of("a", SHARD1, "b", SHARD2));
    openFails(index)
        .hasMessageContaining("shard file '" + SHARD2 + "'")
        .hasMessageContaining("does not exist");
  }

  @Test
  void tensorInADifferentShardThanTheIndexSaysIsRejected() throws IOException {
    writeShard(SHARD1, "a");
    writeShard(SHARD2, "b");
    Map<String, String> map = new LinkedHashMap<>();
    map.put("a", SHARD2);
    map.put("b", SHARD1);
    Path index = writeIndex(map);
    openFails(index)
        .hasMessageContaining("weight_map puts tensor 'a' in shard '" + SHARD2 + "'")
        .hasMessageContaining("(it is in '" + SHARD1 + "')");
  }

  @Test
  void shardHoldingATensorTheIndexDoesNotListIsRejected() throws IOException {
    writeShard(SHARD1, "a");
    writeShard(SHARD2, "b", "extra");
    Map<String, String> map = new LinkedHashMap<>();
    map.put("a", SHARD1);
    map.put("b", SHARD2);
    Path index = writeIndex(map);
    openFails(index)
        .hasMessageContaining("shard '" + SHARD2 + "' holds tensor 'extra'")
        .hasMessageContaining("does not list");
  }

  @Test
  void tensorListedButAbsentFromItsShardIsRejected() throws IOException {
    writeShard(SHARD1, "a");
    Path index = writeIndex(Map.of("a", SHARD1, "ghost", SHARD1));
    openFails(index)
        .hasMessageContaining("weight_map puts tensor 'ghost' in shard '" + SHARD1 + "'")
        .hasMessageContaining("no such tensor");
  }

  @Test
  void tensorInTwoShardsIsRejected() throws IOException {
    writeShard(SHARD1, "a", "dup");
    writeShard(SHARD2, "dup");
    Path index = writeIndex(Map.of("a", SHARD1, "dup", SHARD2));
    openFails(index)
        .hasMessageContaining("tensor 'dup' is in both shard")
        .hasMessageContaining("unique");
  }

  @Test
  void indexThatIsNotJsonIsRejected() throws IOException {
    Path index =
        Files.writeString(dir.resolve(SafetensorsCheckpoint.INDEX_FILE), "{\"weight_map\": ");
    openFails(index).hasMessageContaining("index is not valid JSON");
  }

  @Test
  void indexWithoutAWeightMapIsRejected() throws IOException {
    Path index =
        Files.writeString(dir.resolve(SafetensorsCheckpoint.INDEX_FILE), "{\"metadata\": {}}");
    openFails(index).hasMessageContaining("\"weight_map\" must be a non-empty object");
  }

  @Test
  void weightMapValueThatIsNotAFileNameIsRejected() throws IOException {
    Path index =
        Files.writeString(
            dir.resolve(SafetensorsCheckpoint.INDEX_FILE),
            "{\"weight_map\": {\"a\": \"../x.safetensors\"}}");
    openFails(index)
        .hasMessageContaining("tensor 'a'")
        .hasMessageContaining("shard file name in the same directory");
    Files.writeString(index, "{\"weight_map\": {\"a\": 7}}");
    openFails(index).hasMessageContaining("tensor 'a'");
  }

  @Test
  void malformedShardIsReportedByItsOwnName() throws IOException {
    Path shard = Files.write(dir.resolve(SHARD1), new byte[3]);
    writeIndex(Map.of("a", SHARD1));
    assertThatThrownBy(() -> SafetensorsCheckpoint.open(dir).close())
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining(shard.toString())
        .hasMessageContaining("file is 3 bytes");
  }

  @Test
  void directoryWithoutACheckpointIsRejected() {
    assertThatThrownBy(() -> SafetensorsCheckpoint.open(dir).close())
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining(dir.toString())
        .hasMessageContaining("expected model.safetensors or model.safetensors.index.json");
    assertThatThrownBy(() -> SafetensorsCheckpoint.open(dir.resolve("missing")).close())
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("missing")
        .hasMessageContaining("does not exist");
  }

  private AbstractThrowableAssert<?, ? extends Throwable> openFails(Path index) {
    return assertThatThrownBy(() -> SafetensorsCheckpoint.open(index).close())
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining(index.toString());
  }

  private void writeShard(String file, String... names) {
    Map<String, Tensor> tensors = new LinkedHashMap<>();
    for (String n : names) {
      tensors.put(n, Tensor.f32(new long[] {2}, new float[] {1f, 2f}));
    }
    SafetensorsWriter.write(dir.resolve(file), tensors, null);
  }

  private Path writeIndex(Map<String, String> weightMap) throws IOException {
    Path index = dir.resolve(SafetensorsCheckpoint.INDEX_FILE);
    new ObjectMapper()
        .writeValue(
            index.toFile(),
            Map.of("metadata", Map.of("total_size", 1171200), "weight_map", weightMap));
    return index;
  }
}
