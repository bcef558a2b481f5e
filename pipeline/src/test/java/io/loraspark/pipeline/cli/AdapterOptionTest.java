package io.loraspark.pipeline.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.loraspark.train.lora.AdapterChain;
import io.loraspark.train.lora.AdapterParent;
import io.loraspark.train.lora.ChainReads;
import io.loraspark.train.lora.LoraConfig;
import io.loraspark.train.lora.LoraWeights;
import io.loraspark.train.lora.PeftAdapter;
import io.loraspark.train.model.CheckpointLoader;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.Projection;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Consumer;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * {@code --adapter}: the base_model_name_or_path hint is added only when a different base model
 * would explain the failure, never to a config-key error.
 */
class AdapterOptionTest {

  static final Path STORIES = Path.of("../models/stories260K");
  static final String OTHER_BASE = "someone/other-model";

  @TempDir Path tmp;
  ModelWeights base;
  Path adapter;

  @BeforeEach
  void saveAdapterForAnotherBase() {
    base = CheckpointLoader.load(STORIES);
    LoraConfig config = new LoraConfig(2, 4, 0, List.of(Projection.Q, Projection.V), false);
    adapter = tmp.resolve("adapter");
    PeftAdapter.save(
        adapter, LoraWeights.init(base.config(), config, 1, DataType.FLOAT), OTHER_BASE);
  }

  private void editConfig(Consumer<ObjectNode> edit) throws IOException {
    Path file = adapter.resolve(PeftAdapter.CONFIG_FILE);
    ObjectMapper mapper = new ObjectMapper();
    ObjectNode root = (ObjectNode) mapper.readTree(file.toFile());
    edit.accept(root);
    Files.writeString(file, mapper.writeValueAsString(root));
  }

  @Test
  void configKeyErrorIsReportedWithoutTheBaseModelHint() throws IOException {
    editConfig(n -> n.putArray("layers_to_transform").add("0"));

    assertThatThrownBy(() -> AdapterOption.load(adapter, STORIES, base))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("layers_to_transform")
        .hasMessageNotContaining("base_model_name_or_path");
  }

  @Test
  void layersTheModelLacksGetTheBaseModelHint() throws IOException {
    editConfig(n -> n.putArray("layers_to_transform").add(7));

    assertThatThrownBy(() -> AdapterOption.load(adapter, STORIES, base))
        .isInstanceOf(IllegalArgumentException.class)
        .hasCauseInstanceOf(PeftAdapter.ModelMismatchException.class)
        .hasMessageContaining("layers_to_transform [7] names no layer")
        .hasMessageContaining("base_model_name_or_path '" + OTHER_BASE + "'");
  }

  @Test
  void adapterOnSomeLayersLoads() throws IOException {
    editConfig(n -> n.putArray("layers_to_transform").add(0).add(2));
    LoraConfig config = PeftAdapter.readConfig(adapter);
    Path partial = tmp.resolve("partial");
    LoraWeights w = LoraWeights.init(base.config(), config, 1, DataType.FLOAT);
    PeftAdapter.save(partial, w, OTHER_BASE);

    LoraWeights loaded = AdapterOption.load(partial, STORIES, base);

    assertThat(loaded.modules()).as("q and v of layers 0 and 2").hasSize(4);
    assertThat(loaded.module(1, Projection.Q)).as("layer 1 is not adapted").isNull();
  }

  @Test
  void scoringDecodingAndExportingAChildReadItsChainOnce() {
    Path parent = tmp.resolve("parent");
    PeftAdapter.save(
        parent,
        LoraWeights.init(base.config(), PeftAdapter.readConfig(adapter), 2, DataType.FLOAT),
        OTHER_BASE);
    AdapterChain.record(adapter, AdapterParent.of(parent.toString()));
    Path out = tmp.resolve("export");
    String[] export = {
      "export",
      "--adapter",
      adapter.toString(),
      "--model",
      STORIES.toString(),
      "--output",
      out.toString()
    };
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int[] exit = new int[1];

    assertThat(ChainReads.during(() -> AdapterOption.adapters(adapter, STORIES, base)))
        .as("chain reads of score's --adapter")
        .isEqualTo(1);
    assertThat(ChainReads.during(() -> AdapterOption.loadForDecoding(adapter, STORIES, base)))
        .as("chain reads of generate's adapter load")
        .isEqualTo(1);
    assertThat(
            ChainReads.during(
                () ->
                    exit[0] =
                        Main.execute(
                            export,
                            new PrintStream(OutputStream.nullOutputStream()),
                            new PrintStream(err))))
        .as("chain reads of export (exit %d: %s)", exit[0], err)
        .isEqualTo(1);
    assertThat(exit[0]).as("export: %s", err).isZero();
  }
}
