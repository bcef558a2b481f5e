package io.loraspark.train.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

class TransformerTest {
  private static final Path REFERENCE = Path.of("../fixtures/reference/stories260K_reference.json");
  private static final Path INPUT_IDS = Path.of("../fixtures/reference/stories260K_input_ids.json");

  @TempDir Path tmp;

  /** PyTorch fp32 reference (fixtures/SOURCES.md): loss 0.849495 and logits, within 1e-4. */
  @Test
  void storiesLossAndLogitsMatchPyTorch() throws Exception {
    JsonNode ref = new ObjectMapper().readTree(REFERENCE.toFile());
    int[] ids = readIds();
    Transformer model = new Transformer(CheckpointLoader.load(TestModels.STORIES));
    Batch batch = Batch.padded(List.of(ids), null, 0);
    Workspace ws = model.newWorkspace(1, ids.length);
    model.forward(batch, Adapters.NONE, ws);
    INDArray logits = ws.logits();
    for (int v = 0; v < 16; v++) {
      assertThat(logits.getDouble(ids.length - 1, v))
          .as("last-position logit %d", v)
          .isCloseTo(ref.get("last_position_logits_first16").get(v).asDouble(), within(1e-4));
      assertThat(logits.getDouble(0, v))
          .as("first-position logit %d", v)
          .isCloseTo(ref.get("first_position_logits_first16").get(v).asDouble(), within(1e-4));
    }
    assertThat(logits.getRow(ids.length - 1).norm2Number().doubleValue())
        .as("L2 norm of the last logits")
        .isCloseTo(ref.get("last_position_logits_l2").asDouble(), within(1e-3));
    LossStats loss = model.loss(batch, ws);
    assertThat(loss.counts()[0]).as("scored tokens").isEqualTo(ids.length - 1);
    assertThat(loss.mean(0))
        .as("mean next-token cross-entropy")
        .isCloseTo(ref.get("mean_cross_entropy").asDouble(), within(1e-4));
  }

  /**
   * A bad token, position or label is refused before any work, naming its row and position (the
   * checks run for every token of every step, so the common case builds no message).
   */
  @Test
  void forwardNamesTheRowAndPositionOfABadTokenPositionOrLabel() throws Exception {
    Transformer model = new Transformer(CheckpointLoader.load(TestModels.STORIES)); // V = 512
    int[] ok = {1, 2, 3, 4};
    Batch badId = Batch.padded(List.of(ok, new int[] {1, 2, 512, 4}), null, 0);
    org.assertj.core.api.Assertions.assertThatThrownBy(
            () -> model.forward(badId, Adapters.NONE, model.newWorkspace(2, 4)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("row 1 position 2: token id 512 is outside the vocabulary [0, 512)");
    Batch badLabel = Batch.padded(List.of(ok), List.of(new int[] {Batch.IGNORE, 2, -7, 4}), 0);
    org.assertj.core.api.Assertions.assertThatThrownBy(
            () -> model.forward(badLabel, Adapters.NONE, model.newWorkspace(1, 4)))
        .hasMessage("row 0 position 2: label -7 must be -100 or inside the vocabulary [0, 512)");
    int[] long513 = new int[513]; // positions 0..512; max_position_embeddings = 512
    Batch tooLong = Batch.padded(List.of(long513), null, 0);
    org.assertj.core.api.Assertions.assertThatThrownBy(
            () -> model.forward(tooLong, Adapters.NONE, model.newWorkspace(1, 513)))
        .hasMessage("row 0 position 512: position 512 is beyond max_position_embeddings=512");
  }

  @Test
  void storiesForwardMatchesNaiveReference() throws Exception {
    int[] ids = java.util.Arrays.copyOf(readIds(), 40);
    ModelWeights w = CheckpointLoader.load(TestModels.STORIES, DataType.DOUBLE);
    assertLogitsMatchReference(w, ids, 1e-9);
  }

  @ParameterizedTest(name = "{0} tied={1} bias={2}")
  @CsvSource({
    "LlamaForCausalLM, true, false",
    "LlamaForCausalLM, false, true",
    "MistralForCausalLM, false, false",
    "Qwen2ForCausalLM, false, false",
    "Qwen2ForCausalLM, true, false"
  })
  void randomCheckpointMatchesNaiveReference(String arch, boolean tied, boolean bias) {
    Path dir = TestModels.writeRandom(tmp.resolve(arch), TestModels.config(arch, tied, bias), 7);
    int[] ids = {1, 5, 9, 33, 2, 17, 17, 4, 30, 11, 0, 36};
    ModelConfig c = ModelConfig.load(dir);
    assertThat(c.qkvBias()).as("q/k/v bias").isEqualTo(bias || arch.startsWith("Qwen2"));
    assertLogitsMatchReference(CheckpointLoader.load(dir, DataType.DOUBLE), ids, 1e-9);
    // float32, the product path: 1e-5 relative to the logit scale
    assertLogitsMatchReference(CheckpointLoader.load(dir, DataType.FLOAT), ids, 1e-5);
  }

  @Test
  void paddedBatchScoresLikeUnpaddedRows() throws Exception {
    int[] ids = readIds();
    Transformer model = new Transformer(CheckpointLoader.load(TestModels.STORIES));
    List<int[]> rows = new ArrayList<>();
    rows.add(java.util.Arrays.copyOfRange(ids, 0, 30));
    rows.add(java.util.Arrays.copyOfRange(ids, 0, 70));
    rows.add(java.util.Arrays.copyOfRange(ids, 50, 61));
    double nll = 0;
    long count = 0;
    for (int[] row : rows) {
      Batch single = Batch.padded(List.of(row), null, 0);
      Workspace ws = model.newWorkspace(1, row.length);
      model.forward(single, Adapters.NONE, ws);
      LossStats s = model.loss(single, ws);
      nll += s.totalNll();
      count += s.totalCount();
    }
    Batch padded = Batch.padded(rows, null, 0);
    Workspace ws = model.newWorkspace(3, 70);
    model.forward(padded, Adapters.NONE, ws);
    LossStats s = model.loss(padded, ws);
    assertThat(s.totalCount()).as("scored tokens").isEqualTo(count);
    assertThat(s.totalNll() / s.totalCount())
        .as("padded batch mean loss")
        .isCloseTo(nll / count, within(1e-5));
  }

  private void assertLogitsMatchReference(ModelWeights w, int[] ids, double relTol) {
    Transformer model = new Transformer(w);
    Workspace ws = model.newWorkspace(1, ids.length);
    model.forward(Batch.padded(List.of(ids), null, 0), Adapters.NONE, ws);
    double[][] expected = new ReferenceLlama(w).logits(ids);
    double scale = 0;
    for (double[] row : expected) {
      for (double v : row) {
        scale = Math.max(scale, Math.abs(v));
      }
    }
    for (int t = 0; t < ids.length; t++) {
      for (int v = 0; v < expected[t].length; v++) {
        assertThat(ws.logits().getDouble(t, v))
            .as("%s %s logit[%d][%d]", w.config().architecture(), w.embed().dataType(), t, v)
            .isCloseTo(expected[t][v], within(relTol * Math.max(1, scale)));
      }
    }
  }

  public static int[] readIds() throws Exception {
    JsonNode node = new ObjectMapper().readTree(INPUT_IDS.toFile());
    JsonNode arr = node.has("input_ids") ? node.get("input_ids") : node.get("ids");
    int[] ids = new int[arr.size()];
    for (int i = 0; i < ids.length; i++) {
      ids[i] = arr.get(i).asInt();
    }
    return ids;
  }
}
