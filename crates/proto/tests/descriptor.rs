//! The descriptor set exported for gRPC reflection describes every service of `ssdit.v1`.

use prost::Message;

#[test]
fn descriptor_set_lists_every_service() {
    let set = prost_types::FileDescriptorSet::decode(ssdit_proto::FILE_DESCRIPTOR_SET).unwrap();
    let services: Vec<String> = set
        .file
        .iter()
        .filter(|f| f.package() == "ssdit.v1")
        .flat_map(|f| f.service.iter().map(|s| s.name().to_owned()))
        .collect();
    for expected in [
        "IngestService",
        "TextEncoderService",
        "VaeService",
        "TrainerService",
        "SamplerService",
    ] {
        assert!(
            services.iter().any(|s| s == expected),
            "{expected} missing: {services:?}"
        );
    }
}

#[test]
fn generated_service_names_match_the_package() {
    use ssdit_proto::v1::sampler_service_server::SERVICE_NAME;
    assert_eq!(SERVICE_NAME, "ssdit.v1.SamplerService");
}
