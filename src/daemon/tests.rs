//! Handlers tested by passing the request enum directly.

use super::*;
use crate::hypervisor::Libvirt;
use crate::model::Tier;

fn daemon(policy: Policy) -> Arc<Daemon> {
    let hv: Arc<dyn Hypervisor> = Arc::new(Libvirt::open(Some("test:///default")).unwrap());
    let config = Config {
        policy,
        ..Config::default()
    };
    let d = Daemon::new(
        config,
        Box::new(move || Ok(hv.clone())),
        Store::in_memory().unwrap(),
        None,
    )
    .unwrap();
    d.set_hypervisor(Some((d.connector)().unwrap()));
    d
}

fn json(r: Reply) -> (u16, serde_json::Value) {
    match r {
        Reply::Json(s, v) => (s, v),
        Reply::Text(t) => panic!("text reply: {t}"),
    }
}

#[tokio::test]
async fn overrides_need_an_admin_and_change_predictions() {
    let d = daemon(Policy::Advise);
    let user = Caller {
        who: "uid 1000".into(),
        admin: false,
    };
    let set = Request::SetOverride(api::OverrideBody {
        scope: OverrideScope::Package {
            package: "nginx".into(),
            os: None,
            tier: None,
        },
        spec: OverrideSpec::Exact {
            profile: ResourceProfile {
                vcpus: Some(3),
                ..Default::default()
            },
        },
        reason: "measured".into(),
    });
    let e = d.dispatch(&user, set.clone()).await.unwrap_err();
    assert_eq!(e.status, 403);
    assert!(e.message.contains("uid 1000"), "{}", e.message);
    assert!(lock(&d.store).list_overrides(true).unwrap().is_empty());

    let admin = Caller::admin("uid 0");
    let (s, v) = json(d.dispatch(&admin, set).await.unwrap());
    assert_eq!(s, 201);
    let id = v["id"].as_i64().unwrap();
    let predict = Request::Predict(api::PredictBody {
        package: Some("nginx".into()),
        os: Some("debian12".into()),
        tier: Some(Tier::Low),
        ..Default::default()
    });
    let (_, a) = json(d.dispatch(&user, predict.clone()).await.unwrap());
    assert_eq!(a["profile"]["vcpus"], 3);
    let (s, _) = json(
        d.dispatch(&admin, Request::RemoveOverride { id })
            .await
            .unwrap(),
    );
    assert_eq!(s, 200);
    let (_, a) = json(d.dispatch(&user, predict).await.unwrap());
    assert_eq!(a["profile"]["vcpus"], 1);
    let e = d
        .dispatch(&admin, Request::RemoveOverride { id })
        .await
        .unwrap_err();
    assert_eq!(e.status, 404);
    let log = lock(&d.store).audit_log().unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].who, "uid 0");
}

#[tokio::test]
async fn bounds_clamp_the_prediction() {
    let min = ResourceProfile {
        vcpus: Some(2),
        ..Default::default()
    };
    let max = ResourceProfile {
        memory_kib: Some(1024 * 1024),
        ..Default::default()
    };
    let req = PredictRequest {
        package: None,
        os: None,
        tier: Some(Tier::High),
        pinned: ResourceProfile::default(),
    };
    let a = predict_with(req, Some(&OverrideSpec::Bounds { min, max })).unwrap();
    assert_eq!(a.profile.vcpus, Some(4));
    assert_eq!(a.profile.memory_kib, Some(1024 * 1024));
    assert_eq!(a.profile.current_memory_kib, Some(1024 * 1024));
}

#[tokio::test]
async fn define_through_the_api_rewrites_first() {
    let d = daemon(Policy::Enforce);
    let xml = "<domain type='test'><name>prae-daemon-unit-def</name><memory unit='KiB'>524288</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>";
    let req = Request::Define(api::DefineBody {
        xml: xml.into(),
        tier: Some(Tier::Low),
        pinned: ResourceProfile::default(),
    });
    let (s, v) = json(d.dispatch(&Caller::admin("t"), req).await.unwrap());
    assert_eq!(s, 201);
    assert_eq!(v["name"], "prae-daemon-unit-def");
    let hv = d.hypervisor().unwrap();
    let x = hv
        .domain_xml("prae-daemon-unit-def", crate::hypervisor::XmlKind::Inactive)
        .unwrap();
    assert!(marks::marks(&x).unwrap().handled);
    // Bad XML changes nothing and says why.
    let e = d
        .dispatch(
            &Caller::admin("t"),
            Request::Define(api::DefineBody {
                xml: "<domain".into(),
                tier: None,
                pinned: ResourceProfile::default(),
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(e.status, 400);
    hv.undefine("prae-daemon-unit-def").unwrap();
}

#[tokio::test]
async fn builds_without_a_base_are_refused_before_anything_starts() {
    let d = daemon(Policy::Advise);
    let req = Request::RequestBuild(api::BuildBody {
        package: "hello".into(),
        os: "debian12".into(),
        tier: None,
        pinned: ResourceProfile::default(),
    });
    let e = d.dispatch(&Caller::admin("t"), req).await.unwrap_err();
    assert_eq!(e.status, 501);
    let bad = Request::RequestBuild(api::BuildBody {
        package: "hello; rm".into(),
        os: "debian12".into(),
        tier: None,
        pinned: ResourceProfile::default(),
    });
    let e = d.dispatch(&Caller::admin("t"), bad).await.unwrap_err();
    assert_eq!(e.status, 400);
    assert!(lock(&d.builds).is_empty());
    let e = d
        .dispatch(&Caller::admin("t"), Request::BuildStatus { id: 9 })
        .await
        .unwrap_err();
    assert_eq!(e.status, 404);
}

#[tokio::test]
async fn health_status_and_metrics() {
    let d = daemon(Policy::Advise);
    let user = Caller {
        who: "u".into(),
        admin: false,
    };
    let (_, h) = json(d.dispatch(&user, Request::Health).await.unwrap());
    assert_eq!(h["libvirt"]["connected"], true);
    let (_, s) = json(d.dispatch(&user, Request::Status).await.unwrap());
    assert!(
        s["domains"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["name"] == "test")
    );
    let Reply::Text(m) = d.dispatch(&user, Request::Metrics).await.unwrap() else {
        panic!("metrics not text");
    };
    assert!(m.contains("prae_domain_vcpus{domain=\"test\""), "{m}");
    d.set_hypervisor(None);
    let e = d.dispatch(&user, Request::Status).await.unwrap_err();
    assert_eq!(e.status, 503);
    // Predictions do not need libvirt.
    assert!(
        d.dispatch(&user, Request::Predict(api::PredictBody::default()))
            .await
            .is_ok()
    );
}
