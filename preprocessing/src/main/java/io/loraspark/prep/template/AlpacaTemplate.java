package io.loraspark.prep.template;

import io.loraspark.prep.schema.Conversation;
import io.loraspark.prep.schema.Role;
import io.loraspark.prep.schema.Turn;
import java.util.ArrayList;
import java.util.List;

/**
 * The Stanford Alpaca prompt (github.com/tatsu-lab/stanford_alpaca, {@code PROMPT_DICT}), with the
 * newline after "### Response:" that alpaca-lora and most later recipes use:
 *
 * <pre>
 * Below is an instruction that describes a task[, paired with an input that provides further
 * context]. Write a response that appropriately completes the request.
 *
 * ### Instruction:
 * {instruction}
 *
 * [### Input:
 * {input}
 *
 * ]### Response:
 * {output}&lt;EOS&gt;
 * </pre>
 *
 * Only {output} and EOS are scored (Stanford's {@code train.py} appends EOS to the target too). A
 * system turn replaces the first sentence of the preamble. Further user/assistant pairs of a
 * multi-turn conversation continue as "\n\n### Instruction:\n...\n\n### Response:\n...&lt;EOS&gt;",
 * each response scored.
 */
public final class AlpacaTemplate implements PromptTemplate {

  /** Preamble when the example has an input. */
  public static final String PREAMBLE_INPUT =
      "Below is an instruction that describes a task, paired with an input that provides further"
          + " context. Write a response that appropriately completes the request.";

  /** Preamble when it has none. */
  public static final String PREAMBLE_NO_INPUT =
      "Below is an instruction that describes a task. Write a response that appropriately"
          + " completes the request.";

  /** Name recorded in the manifest. */
  public static final String NAME = "alpaca";

  @Override
  public List<Piece> render(Conversation conversation) {
    List<Turn> turns = conversation.turns();
    int i = 0;
    String system = null;
    if (turns.get(0).role() == Role.SYSTEM) {
      system = turns.get(0).content();
      i = 1;
    }
    List<Piece> pieces = new ArrayList<>();
    for (; i + 1 < turns.size(); i += 2) {
      Turn user = turns.get(i);
      StringBuilder prompt = new StringBuilder();
      if (pieces.isEmpty()) {
        String preamble = user.context().isEmpty() ? PREAMBLE_NO_INPUT : PREAMBLE_INPUT;
        prompt.append(system != null ? system : preamble);
      }
      prompt.append("\n\n### Instruction:\n").append(user.content());
      if (!user.context().isEmpty()) {
        prompt.append("\n\n### Input:\n").append(user.context());
      }
      prompt.append("\n\n### Response:\n");
      pieces.add(new Piece.Text(prompt.toString(), false));
      pieces.add(new Piece.Text(turns.get(i + 1).content(), true));
      pieces.add(new Piece.Eos());
    }
    return pieces;
  }

  @Override
  public String name() {
    return NAME;
  }
}
