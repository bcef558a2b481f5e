package io.loraspark.train.loop;

import static io.loraspark.train.model.TestModels.rows;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.loraspark.train.lora.LoraMethod;
import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.Transformer;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * Checkpoint keys: named fields in the documented order with a format version, and what a resume
 * does with a checkpoint of another key format (an upgrade from the records-text keys of format 1).
 */
class AdapterKeyTest {
  @RegisterExtension
  static final TrainingFixture data =
      new TrainingFixture(false, 7, rows(40, 11, 12), rows(8, 12, 12));

  private static final ObjectMapper JSON = new ObjectMapper();

  static AdapterSpec spec(String id, int steps) {
    return new AdapterSpec(
        id,
        TrainingFixture.lora(LoraMethod.LORA, 2, 0.0),
        TrainingFixture.cosine(steps, 3, 4.0, 5));
  }

  @Test
  void keyIsTheVersionLineAndNamedFieldsInOrder() throws Exception {
    ModelConfig model = data.model(DataType.FLOAT).config();
    AdapterKey key = AdapterKey.of(spec("a", 6), model, "d00d");
    assertThat(key.fields().keySet())
        .as("documented order: adapter, training, model shape, data")
        .startsWith("method", "rank", "alpha", "dropout", "targets", "rslora", "steps")
        .endsWith("model.bos_token_id", "model.eos_token_id", "data")
        .doesNotContain("selection");
    StringBuilder text = new StringBuilder("lora-spark adapter key v2\n");
    key.fields().forEach((k, v) -> text.append(k).append('=').append(v).append('\n'));
    String sha =
        HexFormat.of()
            .formatHex(
                MessageDigest.getInstance("SHA-256")
                    .digest(text.toString().getBytes(StandardCharsets.UTF_8)));
    assertThat(key.hash()).isEqualTo(sha.substring(0, 32));
    assertThat(key.fields()).containsEntry("lr_ratio", "4.0").containsEntry("method", "lora");
  }

  @Test
  void aSettingAddedAtItsDefaultKeepsTheKey() {
    ModelConfig model = data.model(DataType.FLOAT).config();
    AdapterKey before = AdapterKey.of(spec("a", 6), model, "d");
    AdapterKey.Builder b = AdapterKey.settings(spec("a", 6));
    b.putUnlessDefault("precision", "fp32", "fp32");
    AdapterKey same = b.put("model.architecture", model.architecture()).build();
    assertThat(same.fields().keySet()).doesNotContain("precision");
    AdapterKey.Builder c = AdapterKey.settings(spec("a", 6));
    c.putUnlessDefault("precision", "bf16", "fp32");
    assertThat(c.build().fields()).containsEntry("precision", "bf16");
    assertThat(before.differences(AdapterKey.of(spec("a", 7), model, "d").fields()))
        .containsExactly("steps 7 → 6");
  }

  /** Today's checkpoints (format 1, records' text) keep working for an in-place upgrade. */
  @Test
  void aFormat1CheckpointOfTheSameSettingsResumesWithOneNote(@TempDir Path dir) throws IOException {
    Transformer m = data.model(DataType.FLOAT);
    AdapterSpec spec = spec("a", 8);
    TrainedAdapter whole = data.trainer(m, List.of(spec)).run(x -> {}).get(0);
    Path ckpt = dir.resolve("ckpt");
    data.trainer(m, List.of(spec)).checkpointing(ckpt, 0, 1).stopAt(4).run(x -> {});
    asFormat1(ckpt.resolve("a"), text -> text);

    List<String> notes = new ArrayList<>();
    FusedTrainer next = data.trainer(m, List.of(spec)).checkpointing(ckpt, 0, 1);
    assertThat(next.resume(notes::add)).isEqualTo(1);
    assertThat(notes)
        .singleElement()
        .asString()
        .contains("step-000004", "key format 1", "resumed")
        .doesNotContain("\n");
    FusedTrainerTest.assertBitIdentical(whole, next.run(x -> {}).get(0));
  }

  /**
   * Upgrading across a changed settings record: a format-1 checkpoint written by a build whose
   * TrainConfig had one more (unrelated) field no longer matches its text; the resume says so in
   * one line, discards it and retrains the adapter from step 0, to the same bits as a fresh run.
   */
  @Test
  void aFormat1CheckpointOfAChangedRecordIsRetrainedWithOneNote(@TempDir Path dir)
      throws IOException {
    Transformer m = data.model(DataType.FLOAT);
    AdapterSpec spec = spec("a", 8);
    TrainedAdapter whole = data.trainer(m, List.of(spec)).run(x -> {}).get(0);
    Path ckpt = dir.resolve("ckpt");
    data.trainer(m, List.of(spec)).checkpointing(ckpt, 0, 1).stopAt(4).run(x -> {});
    asFormat1(ckpt.resolve("a"), text -> text.replace(", seed=", ", precision=FP32, seed="));

    List<String> notes = new ArrayList<>();
    FusedTrainer next = data.trainer(m, List.of(spec)).checkpointing(ckpt, 0, 1);
    assertThat(next.resume(notes::add)).as("nothing restored").isZero();
    assertThat(notes)
        .singleElement()
        .asString()
        .contains("step-000004", "key format 1", "no longer matches", "retrained from step 0")
        .doesNotContain("\n");
    assertThat(AdapterCheckpoint.stepDirs(ckpt.resolve("a"))).as("discarded").isEmpty();
    List<Integer> steps = new ArrayList<>();
    TrainedAdapter retrained = next.run(x -> steps.add(x.step())).get(0);
    assertThat(steps).as("trained from step 1").startsWith(1);
    FusedTrainerTest.assertBitIdentical(whole, retrained);
  }

  @Test
  void aCheckpointOfAnUnknownKeyFormatIsRetrainedWithOneNote(@TempDir Path dir) throws IOException {
    Transformer m = data.model(DataType.FLOAT);
    AdapterSpec spec = spec("a", 4);
    Path ckpt = dir.resolve("ckpt");
    data.trainer(m, List.of(spec)).checkpointing(ckpt, 0, 1).stopAt(2).run(x -> {});
    Path state = AdapterCheckpoint.stepDirs(ckpt.resolve("a")).get(0).resolve("trainer_state.json");
    ObjectNode n = (ObjectNode) JSON.readTree(state.toFile());
    n.put("key_format", 3);
    Files.writeString(state, JSON.writeValueAsString(n));

    List<String> notes = new ArrayList<>();
    assertThat(data.trainer(m, List.of(spec)).checkpointing(ckpt, 0, 1).resume(notes::add))
        .isZero();
    assertThat(notes)
        .singleElement()
        .asString()
        .contains("key format 3 is not this build's format 2", "retrained from step 0");
  }

  /**
   * Rewrites every checkpoint of one adapter as format 1 wrote it: no key fields, the fingerprint
   * the SHA-256 of the records' text (as {@code text} turns it) and the data hash.
   */
  private static void asFormat1(Path adapterDir, java.util.function.UnaryOperator<String> text)
      throws IOException {
    Transformer m = data.model(DataType.FLOAT);
    for (Path step : AdapterCheckpoint.stepDirs(adapterDir)) {
      Path state = step.resolve("trainer_state.json");
      ObjectNode n = (ObjectNode) JSON.readTree(state.toFile());
      String dataHash = n.path("key").path("data").asText();
      AdapterSpec spec = spec(n.path("adapter_id").asText(), 8);
      String records = text.apply(spec + "|" + m.config() + "|" + dataHash);
      n.put("fingerprint", AdapterKey.sha256Hex(records).substring(0, 32));
      n.remove("key_format");
      n.remove("key");
      Files.writeString(state, JSON.writeValueAsString(n));
    }
  }
}
