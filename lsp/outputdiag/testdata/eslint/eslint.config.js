module.exports = [{ files: ["**/*.js"], rules: { "no-unused-vars": "error", "no-undef": "warn", "eqeqeq": "error" } }];
