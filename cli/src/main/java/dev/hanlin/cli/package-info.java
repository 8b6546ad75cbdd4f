/**
 * The {@code trainer} command line: one picocli command per {@code --mode}, each only parsing its
 * options and calling the module that does the work ({@code Trainer}, {@code EvalRun}, {@code
 * LoraMerge}, {@code Prepare}, {@code VocabResize}, ...). Options shared by several modes are
 * mixins: {@link dev.hanlin.cli.RunOptions} for the training modes, {@link
 * dev.hanlin.cli.ModelOptions} and {@link dev.hanlin.cli.DeviceOptions} for the modes that run a
 * trained model, {@link dev.hanlin.cli.ServingModel} and {@link dev.hanlin.cli.Sampling} for
 * generation. {@link dev.hanlin.cli.HfFlags} reads Llama2-Chinese's flags onto config keys.
 */
package dev.hanlin.cli;
