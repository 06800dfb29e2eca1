// Command controller runs cert-manager's controllers, those of the module
// github.com/cert-manager/cert-manager at the version scripts/cert-manager.sh builds, as one
// process outside the cluster, configured by a ControllerConfiguration file (--config).
//
// Why a main of our own: the release's command (cmd/controller, module
// .../controller-binary) is not published on the Go module proxy, only the module holding
// every controller, issuer and the configuration API is. This file does what that command's
// Run does with the parts a test needs: the configuration file decoded, defaulted and
// validated as upstream does it, the feature gates set from it, the same enabled-controller
// rule (the defaults, plus the Gateway API shim when gatewayAPI.enabled), one context
// factory, every enabled controller, and the informer factories (the Gateway API one only
// when Gateway API support is on). Left out: leader election (one process), the metrics,
// healthz and pprof servers (nothing scrapes them in tests).
//
// The module path of the build module is under github.com/cert-manager/cert-manager (see
// scripts/cert-manager.sh): Go allows imports of the module's internal packages, which hold
// the configuration types and their defaults, only from below that path.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	config "github.com/cert-manager/cert-manager/internal/apis/config/controller"
	defaults "github.com/cert-manager/cert-manager/internal/apis/config/controller/v1alpha1"
	"github.com/cert-manager/cert-manager/internal/apis/config/controller/validation"
	"github.com/cert-manager/cert-manager/internal/controller/feature"
	"github.com/cert-manager/cert-manager/pkg/controller"
	shimgateways "github.com/cert-manager/cert-manager/pkg/controller/certificate-shim/gateways"
	controllerconfigfile "github.com/cert-manager/cert-manager/pkg/controller/configfile"
	dnsutil "github.com/cert-manager/cert-manager/pkg/issuer/acme/dns/util"
	logf "github.com/cert-manager/cert-manager/pkg/logs"
	"github.com/cert-manager/cert-manager/pkg/util/configfile"
	utilfeature "github.com/cert-manager/cert-manager/pkg/util/feature"
	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/sets"

	// The controllers and issuers register themselves when imported (as in the release's
	// command).
	_ "github.com/cert-manager/cert-manager/pkg/controller/acmechallenges"
	_ "github.com/cert-manager/cert-manager/pkg/controller/acmeorders"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificate-shim/ingresses"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	_ "github.com/cert-manager/cert-manager/pkg/controller/clusterissuers"
	_ "github.com/cert-manager/cert-manager/pkg/controller/issuers"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/acme"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/selfsigned"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/vault"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/venafi"
)

func main() {
	path := flag.String("config", "", "a ControllerConfiguration file (controller.config.cert-manager.io/v1alpha1)")
	flag.Parse()
	if *path == "" {
		fmt.Fprintln(os.Stderr, "controller: --config FILE is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	logf.InitLogs()
	defer logf.FlushLogs()
	cfg, err := load(*path)
	if err == nil {
		ctx = logf.NewContext(ctx, logf.Log, "controller")
		err = run(ctx, cfg)
	}
	if err != nil {
		logf.Log.Error(err, "controller failed")
		logf.FlushLogs()
		os.Exit(1)
	}
}

func load(path string) (*config.ControllerConfiguration, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	loader, err := configfile.NewConfigurationFSLoader(nil, abs)
	if err != nil {
		return nil, err
	}
	// The decoder defaults every field the file leaves out (the versioned type's defaults).
	file := controllerconfigfile.New()
	if err := loader.Load(file); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	cfg := file.Config
	if err := utilfeature.DefaultMutableFeatureGate.SetFromMap(cfg.FeatureGates); err != nil {
		return nil, fmt.Errorf("feature gates: %w", err)
	}
	if errs := validation.ValidateControllerConfiguration(cfg, nil); len(errs) > 0 {
		return nil, fmt.Errorf("config file %s: %w", path, errs.ToAggregate())
	}
	if err := logf.ValidateAndApply(&cfg.Logging); err != nil {
		return nil, err
	}
	return cfg, nil
}

// enabled: the configuration's `controllers` ("*" for the defaults, "-name" to drop one),
// and the Gateway API shim and HTTP-01 solver when Gateway API support is on.
func enabled(cfg *config.ControllerConfiguration) sets.Set[string] {
	on, off := sets.New[string](), sets.New[string]()
	for _, c := range cfg.Controllers {
		switch {
		case c == "*":
			on.Insert(defaults.DefaultEnabledControllers...)
		case strings.HasPrefix(c, "-"):
			off.Insert(strings.TrimPrefix(c, "-"))
		default:
			on.Insert(c)
		}
	}
	if on.Len() == 0 && off.Len() > 0 {
		on.Insert(defaults.DefaultEnabledControllers...)
	}
	if gatewayAPI(cfg) {
		on.Insert(shimgateways.ControllerName)
	}
	if cfg.Namespace != "" {
		on.Delete(defaults.ClusterScopedControllers...)
	}
	return on.Difference(off)
}

func gatewayAPI(cfg *config.ControllerConfiguration) bool {
	return utilfeature.DefaultFeatureGate.Enabled(feature.ExperimentalGatewayAPISupport) && cfg.GatewayAPIConfig.Enabled
}

func quantity(s, what string) (resource.Quantity, error) {
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return q, fmt.Errorf("%s %q: %w", what, s, err)
	}
	return q, nil
}

func run(rootCtx context.Context, cfg *config.ControllerConfiguration) error {
	log := logf.FromContext(rootCtx)
	h := cfg.ACMEHTTP01Config
	var qs [4]resource.Quantity
	for i, s := range []string{h.SolverResourceRequestCPU, h.SolverResourceRequestMemory, h.SolverResourceLimitsCPU, h.SolverResourceLimitsMemory} {
		q, err := quantity(s, "acmeHTTP01Config solver resources")
		if err != nil {
			return err
		}
		qs[i] = q
	}
	nameservers := cfg.ACMEDNS01Config.RecursiveNameservers
	if len(nameservers) == 0 {
		nameservers = dnsutil.RecursiveNameservers
	}
	factory, err := controller.NewContextFactory(rootCtx, controller.ContextOptions{
		Kubeconfig:         cfg.KubeConfig,
		APIServerHost:      cfg.APIServerHost,
		KubernetesAPIQPS:   cfg.KubernetesAPIQPS,
		KubernetesAPIBurst: cfg.KubernetesAPIBurst,
		Namespace:          cfg.Namespace,
		ACMEOptions: controller.ACMEOptions{
			HTTP01SolverImage:                 h.SolverImage,
			HTTP01SolverResourceRequestCPU:    qs[0],
			HTTP01SolverResourceRequestMemory: qs[1],
			HTTP01SolverResourceLimitsCPU:     qs[2],
			HTTP01SolverResourceLimitsMemory:  qs[3],
			ACMEHTTP01SolverRunAsNonRoot:      h.SolverRunAsNonRoot,
			HTTP01SolverRuntimeClassName:      h.SolverRuntimeClassName,
			HTTP01SolverNameservers:           h.SolverNameservers,
			HTTP01SolverExtraLabels:           h.SolverExtraLabels,
			DNS01Nameservers:                  nameservers,
			DNS01CheckRetryPeriod:             cfg.ACMEDNS01Config.CheckRetryPeriod,
			DNS01CheckAuthoritative:           !cfg.ACMEDNS01Config.RecursiveNameserversOnly,
		},
		SchedulerOptions: controller.SchedulerOptions{MaxConcurrentChallenges: cfg.MaxConcurrentChallenges},
		IssuerOptions: controller.IssuerOptions{
			ClusterIssuerAmbientCredentials: cfg.ClusterIssuerAmbientCredentials,
			IssuerAmbientCredentials:        cfg.IssuerAmbientCredentials,
			ClusterResourceNamespace:        cfg.ClusterResourceNamespace,
		},
		IngressShimOptions: controller.IngressShimOptions{
			DefaultIssuerName:                 cfg.IngressShimConfig.DefaultIssuerName,
			DefaultIssuerKind:                 cfg.IngressShimConfig.DefaultIssuerKind,
			DefaultIssuerGroup:                cfg.IngressShimConfig.DefaultIssuerGroup,
			DefaultAutoCertificateAnnotations: cfg.IngressShimConfig.DefaultAutoCertificateAnnotations,
			ExtraCertificateAnnotations:       cfg.IngressShimConfig.ExtraCertificateAnnotations,
			GatewayAPIExtraProtocols:          sets.New[string](cfg.GatewayAPIConfig.ExtraProtocols...),
		},
		CertificateOptions: controller.CertificateOptions{
			EnableOwnerRef:                           cfg.EnableCertificateOwnerRef,
			CopiedAnnotationPrefixes:                 cfg.CopiedAnnotationPrefixes,
			CertificateRequestMinimumBackoffDuration: cfg.CertificateRequestMinimumBackoffDuration,
			CertificateRequestMaximumBackoffDuration: cfg.CertificateRequestMaximumBackoffDuration,
		},
		ConfigOptions: controller.ConfigOptions{
			EnableGatewayAPI:            cfg.GatewayAPIConfig.Enabled,
			EnableGatewayAPIListenerSet: cfg.GatewayAPIConfig.EnableListenerSet,
		},
	})
	if err != nil {
		return err
	}
	base, err := factory.Build()
	if err != nil {
		return err
	}
	on := enabled(cfg)
	log.Info("starting cert-manager controllers", "controllers", sets.List(on), "gatewayAPI", gatewayAPI(cfg))
	g, ctx := errgroup.WithContext(rootCtx)
	for name, construct := range controller.Known() {
		if !on.Has(name) {
			continue
		}
		c, err := construct(factory)
		if err != nil {
			return fmt.Errorf("controller %s: %w", name, err)
		}
		g.Go(func() error { return c.Run(cfg.NumberOfConcurrentWorkers, ctx) })
	}
	base.SharedInformerFactory.Start(ctx.Done())
	base.KubeSharedInformerFactory.Start(ctx.Done())
	base.HTTP01ResourceMetadataInformersFactory.Start(ctx.Done())
	if gatewayAPI(cfg) {
		base.GWShared.Start(ctx.Done())
	}
	return g.Wait()
}
