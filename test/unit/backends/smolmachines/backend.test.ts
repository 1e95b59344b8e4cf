import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { mebibytes } from "../../../../src/backends/smolmachines/backend.js";

describe("turning a memory limit into smolvm's --mem (MiB)", () => {
  test("reads gibibytes and mebibytes", () => {
    assert.equal(mebibytes("4g"), 4096);
    assert.equal(mebibytes("512m"), 512);
  });

  test("takes the unit in either case", () => {
    assert.equal(mebibytes("2G"), 2048);
    assert.equal(mebibytes("256M"), 256);
  });

  test("rounds kibibytes and bare bytes up to whole MiB, never to 0", () => {
    assert.equal(mebibytes("1024k"), 1);
    assert.equal(mebibytes("1025k"), 2);
    assert.equal(mebibytes("1k"), 1);
    assert.equal(mebibytes(String(1024 ** 2)), 1);
    assert.equal(mebibytes(String(3 * 1024 ** 2 + 1)), 4);
  });

  test("refuses anything that is not a whole number with an optional k, m or g", () => {
    for (const bad of ["", "g", "4gb", "1.5g", "-1g", "4 t", "four"])
      assert.throws(() => mebibytes(bad), /not a memory size/, JSON.stringify(bad));
  });
});
