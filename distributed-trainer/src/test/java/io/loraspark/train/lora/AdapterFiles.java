package io.loraspark.train.lora;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.loraspark.train.safetensors.SafetensorsFile;
import io.loraspark.train.safetensors.SafetensorsWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.BiFunction;
import java.util.function.Consumer;

/** Edits a saved adapter directory in place, to build invalid inputs for tests. */
final class AdapterFiles {
  private AdapterFiles() {}

  /**
   * Rewrites adapter_model.safetensors: each stored tensor is replaced by what {@code edit} returns
   * for it (nothing, itself, renamed or re-typed copies, or extra tensors).
   */
  static void rewriteWeights(
      Path dir,
      BiFunction<String, SafetensorsWriter.Tensor, Map<String, SafetensorsWriter.Tensor>> edit) {
    Path file = dir.resolve(PeftAdapter.WEIGHTS_FILE);
    Map<String, SafetensorsWriter.Tensor> out = new LinkedHashMap<>();
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      for (String name : f.names()) {
        SafetensorsWriter.Tensor t =
            SafetensorsWriter.Tensor.f32(f.info(name).shape(), f.readFloats(name));
        out.putAll(edit.apply(name, t));
      }
    }
    SafetensorsWriter.write(file, out, Map.of("format", "pt"));
  }

  /** Applies {@code edit} to the parsed adapter_config.json and writes it back. */
  static void editConfig(Path dir, Consumer<ObjectNode> edit) {
    Path file = dir.resolve(PeftAdapter.CONFIG_FILE);
    try {
      ObjectMapper mapper = new ObjectMapper();
      ObjectNode root = (ObjectNode) mapper.readTree(file.toFile());
      edit.accept(root);
      Files.writeString(file, mapper.writerWithDefaultPrettyPrinter().writeValueAsString(root));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Writes a weights file holding one zero-filled tensor of dtype {@code dtype} (e.g. I32). */
  static void writeRawWeights(
      Path dir, String name, String dtype, long rows, long cols, int esize) {
    long bytes = rows * cols * esize;
    String json =
        String.format(
            "{\"%s\":{\"dtype\":\"%s\",\"shape\":[%d,%d],\"data_offsets\":[0,%d]}}",
            name, dtype, rows, cols, bytes);
    while (json.length() % 8 != 0) {
      json += " ";
    }
    byte[] header = json.getBytes(StandardCharsets.UTF_8);
    ByteBuffer buf =
        ByteBuffer.allocate(8 + header.length + (int) bytes).order(ByteOrder.LITTLE_ENDIAN);
    buf.putLong(header.length).put(header);
    try {
      Files.write(dir.resolve(PeftAdapter.WEIGHTS_FILE), buf.array());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
