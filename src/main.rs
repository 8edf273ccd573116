fn main() -> std::process::ExitCode {
    tenantform::cli::main()
}
