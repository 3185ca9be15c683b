using System.CommandLine;
using Qmoe.Cli;

// qmoe: one file per verb under Verbs/; each exposes a static Create() returning its Command.
var root = new RootCommand("qmoe: sub-1-bit compression of mixture-of-experts models, and inference from the compressed form");
root.Options.Add(new Option<bool>("--verbose") { Description = "print stack traces after errors", Recursive = true });
CliRunner.Verbose = args.Contains("--verbose");
foreach (var verb in Verbs.All()) root.Subcommands.Add(verb);
return root.Parse(args).Invoke();
