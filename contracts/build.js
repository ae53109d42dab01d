// Compiles the contracts of this folder with the npm `solc` package and writes
// one artifact per contract (ABI and creation bytecode) to contracts/build/.
// Run from the repository root: `npm run build:contracts`.
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const here = __dirname;
const sources = {};
for (const file of fs.readdirSync(here).filter((f) => f.endsWith(".sol")).sort()) {
  sources[file] = { content: fs.readFileSync(path.join(here, file), "utf8") };
}
const input = {
  language: "Solidity",
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    // Pinned so that artifacts do not change with the compiler's default.
    evmVersion: "cancun",
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors || []).filter((e) => e.severity === "error");
for (const message of output.errors || []) console.error(message.formattedMessage);
if (errors.length) process.exit(1);

const outDir = path.join(here, "build");
fs.mkdirSync(outDir, { recursive: true });
for (const [file, contracts] of Object.entries(output.contracts)) {
  for (const [name, contract] of Object.entries(contracts)) {
    const artifact = {
      contractName: name,
      sourceName: file,
      compiler: `solc ${solc.version()}`,
      abi: contract.abi,
      bytecode: "0x" + contract.evm.bytecode.object,
    };
    fs.writeFileSync(path.join(outDir, `${name}.json`), JSON.stringify(artifact, null, 2) + "\n");
    console.log(`wrote contracts/build/${name}.json`);
  }
}
