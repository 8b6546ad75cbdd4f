package dev.hanlin.cli;

import dev.hanlin.data.shard.VerifyData;
import dev.hanlin.tokenizer.Tokenizer;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code --mode verify-data}: checks every byte of a prepared dataset. */
@Command(
    name = "verify-data",
    mixinStandardHelpOptions = true,
    description =
        "Check a prepared dataset completely: every shard's checksum, document index, token"
            + " range, BOS/EOS around each document, and the counts in manifest.json. Exit code 1"
            + " on any problem.")
final class VerifyDataCommand implements Callable<Integer> {
  @Option(names = "--data", required = true, description = "the output_dir of --mode prepare")
  Path data;

  @Option(names = "--tokenizer", description = "also check the shards were made with this one")
  Path tokenizer;

  @Override
  public Integer call() throws Exception {
    String fp = tokenizer == null ? null : Tokenizer.load(tokenizer).fingerprint();
    VerifyData.Report r = VerifyData.run(data, fp);
    System.out.print(r.summary());
    return r.ok() ? 0 : 1;
  }
}
